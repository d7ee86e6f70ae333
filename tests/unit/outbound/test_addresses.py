"""The guarded client's address rules against every way a URL can spell a host the server must not reach."""

from __future__ import annotations

import socket
import threading
from typing import Any

import pytest
from receivers import wait_for

from reelfoundry.outbound import OutboundPolicy, RefusedDestination, ResolutionFailed, parse_ip, refusal
from reelfoundry.outbound import policy as outbound_policy

# (URL, why it is refused) — literal addresses in every encoding browsers and inet_aton accept.
REFUSED = [
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[fd00:ec2::254]/latest/meta-data/", "private"),
    ("http://127.0.0.1:22/", "loopback"),
    ("http://127.255.255.254/", "loopback"),
    ("http://[::1]/", "loopback"),
    ("http://0x7f000001/", "loopback"),
    ("http://0X7F.0.0.1/", "loopback"),
    ("http://2130706433/", "loopback"),
    ("http://017700000001/", "loopback"),
    ("http://0177.0.0.01/", "loopback"),
    ("http://127.1/", "loopback"),
    ("http://127.0.1/", "loopback"),
    ("http://127.0.0.1./", "loopback"),
    ("http://0/", "unspecified"),
    ("http://0.0.0.0:8000/", "unspecified"),
    ("http://[::]/", "unspecified"),
    ("http://10.0.0.1/", "private"),
    ("http://172.16.5.4/", "private"),
    ("http://172.31.255.255/", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://0xa000001/", "private"),
    ("http://167772161/", "private"),
    ("http://100.64.0.1/", "carrier-grade NAT"),
    ("http://100.127.255.254/", "carrier-grade NAT"),
    ("http://169.254.0.1/", "link-local"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[fe80::1%25eth0]/", "link-local"),
    ("http://[fc00::1]/", "private"),
    ("http://[fd12:3456::1]/", "private"),
    ("http://224.0.0.1/", "multicast"),
    ("http://[ff02::1]/", "multicast"),
    ("http://240.0.0.1/", "reserved"),
    ("http://255.255.255.255/", "reserved"),
    ("http://192.0.2.10/", "not globally routable"),
    ("http://198.18.0.1/", "not globally routable"),
    ("http://[::ffff:127.0.0.1]/", "loopback, inside an IPv6 address"),
    ("http://[::ffff:7f00:1]/", "loopback, inside an IPv6 address"),
    ("http://[::ffff:169.254.169.254]/", "link-local"),
    ("http://[::ffff:10.0.0.1]/", "private, inside an IPv6 address"),
    ("http://[::127.0.0.1]/", "loopback, inside an IPv6 address"),
    ("http://[64:ff9b::a9fe:a9fe]/", "link-local"),
    ("http://[2002:7f00:1::]/", "loopback, inside an IPv6 address"),
    ("http://[2002:a9fe:a9fe::1]/", "link-local"),
    ("http://[64:ff9b:1::a00:1]/", "private, inside an IPv6 address"),
    ("http://[::ffff:0:7f00:1]/", "loopback, inside an IPv6 address"),
    ("http://localhost/", "loopback"),
    ("http://LOCALHOST./", "loopback"),
]

PUBLIC = [
    "http://8.8.8.8/",
    "https://1.1.1.1:8443/hook?x=1",
    "http://[2606:4700:4700::1111]/",
    "http://0x08080808/",  # 8.8.8.8 written in hex is still a public address
    "http://[::ffff:8.8.8.8]/",
    "http://100.128.0.1/",  # just past the CGNAT block
    "http://172.32.0.1/",  # just past 172.16/12
]

BAD_FORM = [
    ("ftp://8.8.8.8/", "http or https"),
    ("file:///etc/passwd", "http or https"),
    ("gopher://8.8.8.8:70/", "http or https"),
    ("http://user:pw@8.8.8.8/", "credentials"),
    ("http://user@8.8.8.8/", "credentials"),
    ("http:///nohost", "no host"),
    ("http://8.8.8.8:99999/", "not a valid URL"),
    ("http://8.8.8.8/" + "a" * 2100, "at most 2048"),
]


@pytest.mark.parametrize(("url", "why"), REFUSED)
def test_refused_addresses_in_every_encoding(url: str, why: str) -> None:
    with pytest.raises(RefusedDestination) as refused:
        OutboundPolicy().check(url, "webhook_url")
    assert refused.value.parameter == "webhook_url"
    assert refused.value.status == 422
    assert why in refused.value.detail


@pytest.mark.parametrize("url", PUBLIC)
def test_public_addresses_pass(url: str) -> None:
    destination = OutboundPolicy().check(url, "webhook_url")
    assert refusal(destination.address) is None


@pytest.mark.parametrize(("url", "why"), BAD_FORM)
def test_bad_forms_are_refused(url: str, why: str) -> None:
    with pytest.raises(RefusedDestination) as refused:
        OutboundPolicy().check(url, "webhook_url")
    assert why in refused.value.detail


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("0x7f000001", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0177.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("10.1.258", "10.1.1.2"),
        ("[::1]", "::1"),
        ("example.com", None),
        ("1.2.3.4.5", None),
        ("256.1.1.1", None),
        ("0x", "0.0.0.0"),
        ("08.1.1.1", None),  # 8 is no octal digit: a name, not an address
    ],
)
def test_literal_parsing_matches_browsers(host: str, expected: str | None) -> None:
    parsed = parse_ip(host)
    assert (None if parsed is None else str(parsed)) == expected


def test_allowed_hosts_admit_names_addresses_and_networks() -> None:
    policy = OutboundPolicy(["127.0.0.1", "LocalHost", "10.0.0.0/8"])
    assert str(policy.check("http://127.0.0.1:9/hook", "webhook_url").address) == "127.0.0.1"
    assert policy.check("http://localhost:9/", "webhook_url").host == "localhost"
    assert str(policy.check("http://10.9.8.7/", "webhook_url").address) == "10.9.8.7"
    # Allowing one address admits no other encoding of a different one.
    with pytest.raises(RefusedDestination):
        policy.check("http://127.0.0.2/", "webhook_url")
    with pytest.raises(RefusedDestination):
        policy.check("http://169.254.169.254/", "webhook_url")


def test_a_name_with_any_refused_address_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """One public and one private answer: the client could be steered to either, so the name is refused."""

    def lookup(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        assert host == "mixed.example"
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    with pytest.raises(RefusedDestination) as refused:
        OutboundPolicy().check("https://mixed.example/hook", "webhook_url")
    assert "resolves to 10.1.2.3" in refused.value.detail


def test_a_name_that_does_not_resolve_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def lookup(*args: Any, **kwargs: Any) -> list[Any]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    with pytest.raises(RefusedDestination) as refused:
        OutboundPolicy().check("https://nowhere.invalid/", "webhook_url")
    assert "does not resolve" in refused.value.detail


def test_a_name_server_that_fails_or_stalls_is_a_try_again_not_a_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    def unwell(*args: Any, **kwargs: Any) -> list[Any]:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", unwell)
    with pytest.raises(ResolutionFailed) as busy:
        OutboundPolicy().check("https://hooks.example/", "webhook_url")
    assert busy.value.status == 503 and busy.value.retry_after_s >= 1


def test_stalled_lookups_never_queue_in_front_of_others(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tenant pointing webhooks at a slow name server holds lookup threads, but no later lookup waits
    behind them: it is answered at once (at worst "too many lookups now"), never after a queue."""
    release = threading.Event()
    real = socket.getaddrinfo

    def lookup(host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        if host.startswith("slow"):
            release.wait(30)
            raise socket.gaierror(socket.EAI_AGAIN, "late")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))]

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    policy = OutboundPolicy(resolve_timeout_s=0.05)
    try:
        for i in range(outbound_policy.MAX_LOOKUPS):
            with pytest.raises(ResolutionFailed, match="did not resolve within"):
                policy.check(f"https://slow{i}.example/", "webhook_url")
        with pytest.raises(ResolutionFailed, match="name lookups are in flight"):
            policy.check("https://fine.example/", "webhook_url")
    finally:
        release.set()
    monkeypatch.setattr(socket, "getaddrinfo", real)
    wait_for(_lookups_free, what="lookup threads to finish")
    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    assert str(policy.check("https://fine.example/", "webhook_url").address) == "93.184.216.34"


def _lookups_free() -> bool:
    if outbound_policy._LOOKUPS.acquire(blocking=False):
        outbound_policy._LOOKUPS.release()
        return True
    return False
