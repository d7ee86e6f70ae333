"""Which IP addresses the server may connect to for a user, and every way a URL can spell one.

A URL host like ``0x7f000001``, ``2130706433``, ``127.1`` or ``017700000001`` is 127.0.0.1 to browsers
(the WHATWG URL standard) and to ``inet_aton``, so the literal is decoded here the same way before it
is judged; IPv6 forms that carry an IPv4 address (mapped, compatible, 6to4, NAT64, Teredo) are judged
by the address they carry as well.
"""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Checked in order; the first match names the reason. Anything else that is not globally routable
# (documentation ranges, benchmarking, IETF assignments …) is refused as "not globally routable".
_NAMED: list[tuple[str, list[str]]] = [
    ("unspecified", ["0.0.0.0/8", "::/128"]),
    ("loopback", ["127.0.0.0/8", "::1/128"]),
    ("link-local (cloud metadata services live here)", ["169.254.0.0/16", "fe80::/10"]),
    ("private", ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "fec0::/10"]),
    ("shared address space (carrier-grade NAT)", ["100.64.0.0/10"]),
    ("multicast", ["224.0.0.0/4", "ff00::/8"]),
    ("reserved", ["240.0.0.0/4"]),
]
_NETWORKS = [(reason, [ipaddress.ip_network(n) for n in nets]) for reason, nets in _NAMED]
# Prefixes whose last 32 bits are an IPv4 address: NAT64 (well-known and local-use), SIIT's
# IPv4-translated addresses, and the deprecated IPv4-compatible form.
_CARRIERS = [ipaddress.ip_network(n) for n in ("64:ff9b::/96", "64:ff9b:1::/48", "::ffff:0:0:0/96")]
_COMPATIBLE = ipaddress.ip_network("::/96")
_DIGITS = {8: set("01234567"), 10: set("0123456789"), 16: set("0123456789abcdefABCDEF")}


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, translated, compatible, 6to4, NAT64, Teredo), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if any(address in net for net in _CARRIERS) or (address in _COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def refusal(address: IPAddress) -> str | None:
    """Why the server must not connect to ``address`` for a user, or None if it is a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return "link-local (scoped IPv6)"
        inner = embedded_ipv4(address)
        if inner is not None:
            reason = refusal(inner)
            if reason is not None:
                return f"{reason}, inside an IPv6 address"
    for reason, networks in _NETWORKS:
        if any(address in net for net in networks):
            return reason
    if not address.is_global:
        return "not globally routable"
    return None


def _ipv4_part(text: str) -> int | None:
    """One dotted part as browsers and inet_aton read it: 0x… hex, 0… octal, else decimal."""
    if text[:2].lower() == "0x":
        digits, base = text[2:], 16
        if digits == "":
            return 0
    elif len(text) > 1 and text[0] == "0":
        digits, base = text[1:], 8
    else:
        digits, base = text, 10
    if not digits or not set(digits) <= _DIGITS[base]:
        return None
    return int(digits, base)


def _parse_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The address of a WHATWG-style IPv4 host (1–4 parts, each decimal, octal or hex), else None."""
    parts = host.split(".")
    if parts and parts[-1] == "" and len(parts) > 1:
        parts.pop()  # a trailing dot is allowed
    if not 1 <= len(parts) <= 4:
        return None
    numbers = [_ipv4_part(p) for p in parts]
    if any(n is None for n in numbers):
        return None
    values = [n for n in numbers if n is not None]
    if any(n > 255 for n in values[:-1]) or values[-1] >= 256 ** (5 - len(values)):
        return None
    total = values[-1]
    for i, n in enumerate(values[:-1]):
        total += n << (8 * (3 - i))
    return ipaddress.IPv4Address(total)


def parse_ip(host: str) -> IPAddress | None:
    """The IP address a URL host spells (any IPv4 encoding, bracketed or bare IPv6 with zone), else None."""
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            return None
    return _parse_ipv4(host)
