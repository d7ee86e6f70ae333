"""Fetch a file from a URL someone else chose (a vendor API's output URL) into a local file.

The URL is hostile input: it goes through the same :class:`OutboundPolicy` and pinned connection as
:class:`GuardedClient` (public addresses only unless an operator allows the host; the address checked is
the one connected to), every redirect hop is checked again, the body is streamed to disk and cut off past
``max_bytes``, and the whole fetch (every hop, connect, TLS and each read) shares one deadline. No
credentials are ever sent: the request carries only Host, Accept and User-Agent.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import httpcore

from reelfoundry.outbound.client import _DEFAULT_PORTS, OutboundError, _PinnedBackend, network_error
from reelfoundry.outbound.policy import Destination, OutboundPolicy

_REDIRECTS = {301, 302, 303, 307, 308}
_CHUNK_TICK_BYTES = 1_048_576


class TooLarge(OutboundError):
    """The answer is larger than the caller allows."""


@dataclass(frozen=True)
class Downloaded:
    """What was fetched: where it came from in the end, its size and declared type."""

    url: str
    bytes: int
    content_type: str | None


def _host_header(destination: Destination) -> bytes:
    host = f"[{destination.host}]" if ":" in destination.host else destination.host
    if destination.port != _DEFAULT_PORTS[destination.scheme]:
        host = f"{host}:{destination.port}"
    return host.encode()


def download(
    url: str,
    dest: Path,
    policy: OutboundPolicy,
    *,
    max_bytes: int,
    deadline_s: float,
    parameter: str = "url",
    max_redirects: int = 3,
    tick: Callable[[int], None] | None = None,
) -> Downloaded:
    """GET ``url`` into ``dest`` (created or truncated); the final URL, size and Content-Type.

    Raises RefusedDestination (or ResolutionFailed) when the policy refuses a hop, TooLarge past ``max_bytes``,
    OutboundError for anything else (not 200, too many redirects, timeout, broken connection). ``tick`` is
    called with the bytes received so far about every MiB, and may raise to abandon the fetch. On any error
    ``dest`` is removed.
    """
    deadline = time.monotonic() + deadline_s
    context = ssl.create_default_context()
    try:
        for _hop in range(max_redirects + 1):
            destination = policy.check(url, parameter)
            location = _fetch(url, destination, dest, context, deadline, deadline_s, max_bytes, tick)
            if isinstance(location, Downloaded):
                return location
            url = location
        raise OutboundError(f"more than {max_redirects} redirects")
    except BaseException:
        dest.unlink(missing_ok=True)
        raise


def _fetch(
    url: str,
    destination: Destination,
    dest: Path,
    context: ssl.SSLContext,
    deadline: float,
    deadline_s: float,
    max_bytes: int,
    tick: Callable[[int], None] | None,
) -> Downloaded | str:
    """One hop: the download, or the absolute URL a redirect points to."""
    pool = httpcore.ConnectionPool(
        ssl_context=context,
        network_backend=_PinnedBackend(destination, deadline),
        max_connections=1,
        retries=0,
    )
    step = deadline_s
    extensions = {"timeout": {"connect": step, "read": step, "write": step, "pool": step}}
    headers = [
        (b"Host", _host_header(destination)),
        (b"Accept", b"*/*"),
        (b"User-Agent", b"reelfoundry"),
        (b"Connection", b"close"),
    ]
    try:
        with pool, pool.stream("GET", url, headers=headers, extensions=extensions) as response:
            if response.status in _REDIRECTS:
                target = _header(response, b"location")
                if not target:
                    raise OutboundError(f"a {response.status} redirect without a Location")
                return urljoin(url, target)
            if response.status != 200:
                raise OutboundError(f"the output URL answered HTTP {response.status}")
            declared = _header(response, b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                raise TooLarge(f"the output is {int(declared):,} bytes; at most {max_bytes:,} are fetched")
            received = 0
            next_tick = _CHUNK_TICK_BYTES
            with dest.open("wb") as out:
                for chunk in response.iter_stream():
                    received += len(chunk)
                    if received > max_bytes:
                        # Stop reading: closing the connection is cheaper than draining a huge answer.
                        raise TooLarge(f"the output is over {max_bytes:,} bytes; at most {max_bytes:,} are fetched")
                    out.write(chunk)
                    if tick is not None and received >= next_tick:
                        next_tick = received + _CHUNK_TICK_BYTES
                        tick(received)
            return Downloaded(url=url, bytes=received, content_type=_header(response, b"content-type"))
    except httpcore.TimeoutException:
        raise OutboundError(f"the output did not arrive within {deadline_s:g} s") from None
    except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol) as exc:
        raise network_error(exc, destination) from None


def _header(response: httpcore.Response, name: bytes) -> str | None:
    for key, value in response.headers:
        if key.lower() == name:
            return value.decode("latin-1").strip()
    return None
