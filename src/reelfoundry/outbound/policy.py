"""Where the server may send a request: the URL's form, its host, and the addresses that host resolves to."""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from reelfoundry.errors import InvalidParameter, ServiceBusy
from reelfoundry.outbound.addresses import IPAddress, parse_ip, refusal

MAX_URL_CHARS = 2048
_SCHEMES = {"http": 80, "https": 443}
# getaddrinfo has no timeout and cannot be cancelled: each lookup runs on a thread of its own, waited for
# with a timeout. A slow name server keeps its threads until it answers, so at most this many run at once;
# past that a lookup fails at once (no queue whose waiting would eat into everyone's timeout).
MAX_LOOKUPS = 32
_LOOKUPS = threading.BoundedSemaphore(MAX_LOOKUPS)
#: getaddrinfo errors that say the name does not exist (not that the name server is unwell).
_NO_SUCH_NAME = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}


class RefusedDestination(InvalidParameter):
    """A URL the server will not send a request to (its form, or the address its host names)."""

    type_slug = "refused-destination"
    title = "Refused destination"


class Unresolvable(RefusedDestination):
    """The URL's host name does not exist (a 422 at submission; retried at delivery, DNS may come back)."""


class ResolutionFailed(ServiceBusy):
    """The name server did not answer in time, or too many lookups are in flight: try again later."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, retry_after_s=5)


@dataclass(frozen=True)
class Destination:
    """A URL the policy has approved, and the one address a connection to it must use."""

    url: str
    scheme: str
    host: str
    port: int
    address: IPAddress

    @property
    def receiver(self) -> str:
        """``host:port``: what fair-share limits count deliveries against."""
        return f"{self.host.lower()}:{self.port}"


def split_url(url: str, parameter: str) -> tuple[str, str, int]:
    """Scheme, host and port of an http(s) URL without credentials; RefusedDestination otherwise."""
    if len(url) > MAX_URL_CHARS:
        raise RefusedDestination(parameter, f"{parameter} is {len(url)} characters long; at most {MAX_URL_CHARS}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise RefusedDestination(parameter, f"{parameter} is not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise RefusedDestination(parameter, f"{parameter} must be an http or https URL, got scheme {scheme!r}")
    if parts.username is not None or parts.password is not None:
        raise RefusedDestination(parameter, f"{parameter} must not carry credentials (user:password@host)")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise RefusedDestination(parameter, f"{parameter} has no host")
    return scheme, host, port or _SCHEMES[scheme]


def receiver_of(url: str) -> str:
    """``host:port`` of an http(s) URL (the unit of fair-share limits); "invalid" for one that is not."""
    try:
        _, host, port = split_url(url, "url")
    except RefusedDestination:
        return "invalid"
    return f"{host.lower()}:{port}"[:300]


class OutboundPolicy:
    """Public addresses only, unless the operator allows a host (by name, address or network)."""

    def __init__(self, allowed_hosts: Iterable[str] = (), resolve_timeout_s: float = 2.0) -> None:
        self.resolve_timeout_s = resolve_timeout_s
        self._names: set[str] = set()
        self._networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in allowed_hosts:
            text = entry.strip().lower().rstrip(".")
            literal = parse_ip(text)
            if literal is not None:
                self._networks.append(ipaddress.ip_network(literal))
                continue
            try:
                self._networks.append(ipaddress.ip_network(text.strip("[]"), strict=False))
            except ValueError:
                self._names.add(text)

    def _allowed(self, address: IPAddress) -> bool:
        plain = ipaddress.ip_address(str(address).split("%")[0])
        return any(plain in net for net in self._networks if net.version == plain.version)

    def check(self, url: str, parameter: str) -> Destination:
        """Approve ``url`` and pick the address to connect to; RefusedDestination (422 naming ``parameter``)
        for a bad URL, a refused address, or a name that does not exist (Unresolvable); ResolutionFailed
        (503, try again) when the name server does not answer in time.

        Every address the name resolves to must be allowed, so a name with one public and one private
        address cannot win a race between lookups; the connection then goes to the address checked here.
        """
        scheme, host, port = split_url(url, parameter)
        literal = parse_ip(host)
        name_allowed = host.lower() in self._names
        if literal is not None:
            addresses: list[IPAddress] = [literal]
        else:
            addresses = self._resolve(host, port, parameter)
        if not name_allowed:
            for address in addresses:
                reason = refusal(address)
                if reason is not None and not self._allowed(address):
                    what = (
                        f"address {address}" if literal is not None else f"host {host!r} resolves to {address}, which"
                    )
                    raise RefusedDestination(
                        parameter,
                        f"{parameter} {what} is {reason}; the server sends only to public addresses unless "
                        "REELFOUNDRY_WEBHOOK_ALLOWED_HOSTS names the host",
                    )
        return Destination(url=url, scheme=scheme, host=host, port=port, address=addresses[0])

    def _resolve(self, host: str, port: int, parameter: str) -> list[IPAddress]:
        infos = _lookup(host, port, self.resolve_timeout_s, parameter)
        found: list[IPAddress] = []
        for _family, _type, _proto, _name, sockaddr in infos:
            address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
            if len(sockaddr) == 4 and sockaddr[3]:  # an IPv6 scope id: link-local, whatever the prefix says
                address = ipaddress.IPv6Address(f"{address}%{sockaddr[3]}")
            if address not in found:
                found.append(address)
        if not found:
            raise Unresolvable(parameter, f"{parameter} host {host!r} resolves to no address")
        return found


def _lookup(host: str, port: int, timeout_s: float, parameter: str) -> list[tuple[Any, ...]]:
    """getaddrinfo on a thread of its own, waited for at most ``timeout_s``."""
    if not _LOOKUPS.acquire(blocking=False):
        raise ResolutionFailed(f"{MAX_LOOKUPS} name lookups are in flight; cannot resolve {host!r} now")
    done = threading.Event()
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except (OSError, UnicodeError) as exc:
            outcome.append(exc)
        finally:
            _LOOKUPS.release()
            done.set()

    threading.Thread(target=run, name="reelfoundry-resolve", daemon=True).start()
    if not done.wait(timeout_s):
        raise ResolutionFailed(f"{parameter} host {host!r} did not resolve within {timeout_s:g} s")
    result = outcome[0]
    if isinstance(result, socket.gaierror) and result.errno in _NO_SUCH_NAME:
        raise Unresolvable(parameter, f"{parameter} host {host!r} does not resolve: {result.strerror}")
    if isinstance(result, UnicodeError):
        raise Unresolvable(parameter, f"{parameter} host {host!r} is not a valid host name: {result}")
    if isinstance(result, OSError):
        raise ResolutionFailed(f"{parameter} host {host!r} could not be resolved now: {result}")
    return list(result)
