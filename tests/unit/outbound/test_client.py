"""The guarded client against receivers on 127.0.0.1 that answer huge bodies, trickle, redirect or rebind."""

from __future__ import annotations

import socket
import threading
from typing import Any

import pytest
from receivers import RawReceiver, answer, huge_answer, trickle

from reelfoundry.outbound import GuardedClient, OutboundError, OutboundPolicy, RefusedDestination

LOCAL = OutboundPolicy(["127.0.0.1"])


def test_refused_before_any_connection() -> None:
    receiver = RawReceiver(answer(204))
    try:
        with pytest.raises(RefusedDestination):
            GuardedClient(OutboundPolicy()).post(receiver.url, b"{}", {})
        assert receiver.connections == 0
    finally:
        receiver.close()


def test_a_huge_answer_is_read_only_to_the_cap() -> None:
    sent: list[int] = []
    receiver = RawReceiver(huge_answer(300 * 1024 * 1024, sent))
    try:
        response = GuardedClient(LOCAL, max_response_bytes=65_536).post(receiver.url, b"{}", {})
        assert response.status == 200
        assert response.truncated and len(response.body) == 65_536
    finally:
        receiver.close()
    # The client hung up: the receiver could not push anywhere near its 300 MB through.
    threading.Event().wait(0.5)
    assert sent and sent[0] < 64 * 1024 * 1024


def test_a_trickling_receiver_is_cut_off_at_the_deadline() -> None:
    """One byte every 0.2 s never trips a per-read timeout; the attempt's single deadline ends it."""
    stop = threading.Event()
    receiver = RawReceiver(trickle(0.2, stop))
    try:
        with pytest.raises(OutboundError, match="no complete answer within 1 s"):
            GuardedClient(LOCAL, deadline_s=1.0).post(receiver.url, b"{}", {})
    finally:
        stop.set()
        receiver.close()


def test_redirects_are_not_followed() -> None:
    target = RawReceiver(answer(204))
    redirect = RawReceiver(answer(307, {"Location": target.url}))
    try:
        response = GuardedClient(LOCAL).post(redirect.url, b"{}", {})
        assert response.status == 307
        assert target.connections == 0
    finally:
        target.close()
        redirect.close()


def test_the_address_checked_is_the_address_connected_to(monkeypatch: pytest.MonkeyPatch) -> None:
    """DNS rebinding: the name resolves once; a second lookup (which could answer differently) never happens."""
    receiver = RawReceiver(answer(204))
    real = socket.getaddrinfo
    lookups: list[str] = []

    def lookup(host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        if host == "127.0.0.1":  # the socket layer parsing the pinned address: no name, no DNS
            return real(host, port, *args, **kwargs)
        lookups.append(host)
        if host == "hooks.example":
            return real("127.0.0.1", port, *args, **kwargs)
        raise AssertionError(f"unexpected lookup of {host}")

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    try:
        client = GuardedClient(OutboundPolicy(["hooks.example"]))
        response = client.post(f"http://hooks.example:{receiver.port}/hook", b"{}", {"X-Test": "1"})
        assert response.status == 204
        assert lookups == ["hooks.example"]
        # The receiver sees the name the URL carries, not the address connected to.
        assert b"\r\nHost: hooks.example:%d\r\n" % receiver.port in receiver.requests[0]
    finally:
        receiver.close()


def test_a_closed_port_is_a_clean_error() -> None:
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(OutboundError, match="could not connect"):
        GuardedClient(LOCAL).post(f"http://127.0.0.1:{port}/", b"{}", {})


def test_an_ipv6_receiver_gets_a_bracketed_host_header() -> None:
    sock = socket.create_server(("::1", 0), family=socket.AF_INET6)
    port = sock.getsockname()[1]
    seen: list[bytes] = []

    def serve() -> None:
        conn, _ = sock.accept()
        with conn:
            seen.append(conn.recv(65536))
            conn.sendall(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")

    threading.Thread(target=serve, daemon=True).start()
    try:
        response = GuardedClient(OutboundPolicy(["::1"])).post(f"http://[::1]:{port}/hook", b"{}", {})
    finally:
        sock.close()
    assert response.status == 204
    assert b"\r\nHost: [::1]:%d\r\n" % port in seen[0]
