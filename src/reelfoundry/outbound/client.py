"""The one HTTP client for requests the server makes on a user's behalf.

It connects to the address :class:`OutboundPolicy` approved (the name is resolved once, so a second
lookup cannot be answered differently — DNS rebinding), keeps the URL's host for the Host header and
TLS, follows no redirects, reads at most a few KiB of the answer, and gives the whole attempt one
deadline: every connect, read and write waits only for what is left of it, so a receiver that trickles
a byte at a time is cut off when the deadline passes.
"""

from __future__ import annotations

import ssl
import time
import typing
from dataclasses import dataclass

import httpcore

from reelfoundry.outbound.policy import Destination, OutboundPolicy

_DEFAULT_PORTS = {"http": 80, "https": 443}


class OutboundError(Exception):
    """A request that could not be completed (refused, unreachable, timed out, broken answer)."""


@dataclass(frozen=True)
class OutboundResponse:
    """What came back: the status and the first bytes of the body (the rest was not read)."""

    status: int
    body: bytes
    truncated: bool


def _left(deadline: float, timeout: float | None) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise httpcore.ReadTimeout("the attempt's deadline passed")
    return remaining if timeout is None else min(timeout, remaining)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every operation waits at most until one shared deadline."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: float) -> None:
        self._inner = inner
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _left(self._deadline, timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _left(self._deadline, timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(ssl_context, server_hostname, _left(self._deadline, timeout))
        return _DeadlineStream(inner, self._deadline)

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


class _PinnedBackend(httpcore.NetworkBackend):
    """Opens TCP connections to the approved address only, whatever name the URL carries."""

    def __init__(self, destination: Destination, deadline: float) -> None:
        self._destination = destination
        self._deadline = deadline
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        if port != self._destination.port:
            raise httpcore.ConnectError(f"refusing a connection to port {port}")
        address = str(self._destination.address)
        stream = self._inner.connect_tcp(address, port, _left(self._deadline, timeout), local_address, socket_options)
        return _DeadlineStream(stream, self._deadline)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: typing.Iterable[typing.Any] | None = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are not reachable from here")


class GuardedClient:
    """POSTs to URLs the policy approves, with one deadline per attempt and a capped answer."""

    def __init__(self, policy: OutboundPolicy, *, deadline_s: float = 10.0, max_response_bytes: int = 65_536) -> None:
        self.policy = policy
        self.deadline_s = deadline_s
        self.max_response_bytes = max_response_bytes
        self._ssl = ssl.create_default_context()

    def post(self, url: str, body: bytes, headers: dict[str, str], *, parameter: str = "url") -> OutboundResponse:
        """Send ``body`` to ``url``; RefusedDestination if the policy says no, OutboundError if it fails."""
        deadline = time.monotonic() + self.deadline_s
        destination = self.policy.check(url, parameter)
        pool = httpcore.ConnectionPool(
            ssl_context=self._ssl,
            network_backend=_PinnedBackend(destination, deadline),
            max_connections=1,
            retries=0,
        )
        step = self.deadline_s
        extensions = {"timeout": {"connect": step, "read": step, "write": step, "pool": step}}
        # httpcore writes an IPv6 host without its brackets; a Host header must carry them.
        host = f"[{destination.host}]" if ":" in destination.host else destination.host
        if destination.port != _DEFAULT_PORTS[destination.scheme]:
            host = f"{host}:{destination.port}"
        request_headers = [(b"Host", host.encode()), (b"Connection", b"close")]
        request_headers += [(k.encode(), v.encode()) for k, v in headers.items() if k.lower() != "host"]
        try:
            with pool, pool.stream("POST", url, headers=request_headers, content=body, extensions=extensions) as r:
                kept = bytearray()
                truncated = False
                for chunk in r.iter_stream():
                    kept += chunk
                    if len(kept) > self.max_response_bytes:
                        # Stop reading: closing the connection is cheaper than draining a huge answer.
                        truncated = True
                        del kept[self.max_response_bytes :]
                        break
                return OutboundResponse(status=r.status, body=bytes(kept), truncated=truncated)
        except httpcore.TimeoutException:
            raise OutboundError(f"no complete answer within {self.deadline_s:g} s") from None
        except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol) as exc:
            raise network_error(exc, destination) from None


def network_error(exc: Exception, destination: Destination) -> Exception:
    """What an httpcore error while talking to ``destination`` becomes: an OutboundError with a one-line reason
    (timeouts are the caller's to word); any other exception is returned as it is, to be re-raised."""
    if isinstance(exc, httpcore.ConnectError):
        return OutboundError(f"could not connect to {destination.receiver}: {_reason(exc)}")
    if isinstance(exc, (httpcore.NetworkError, httpcore.ProtocolError)):
        return OutboundError(f"{type(exc).__name__}: {_reason(exc)}")
    if isinstance(exc, httpcore.UnsupportedProtocol):
        return OutboundError(str(exc))
    return exc


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text[:200]
