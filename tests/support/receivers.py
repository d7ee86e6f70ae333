"""Webhook receivers on 127.0.0.1 that behave as a hostile or broken peer would: for the outbound tests."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from typing import Any


class RawReceiver:
    """A TCP server on 127.0.0.1 that hands each connection to ``handle`` on its own thread."""

    def __init__(self, handle: Callable[[socket.socket, bytes], None]) -> None:
        self._handle = handle
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.requests: list[bytes] = []
        self.connections = 0
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(30)
            request = _read_request(conn)
            self.requests.append(request)
            with contextlib.suppress(OSError):  # the client hung up: that is what these tests expect of it
                self._handle(conn, request)

    def close(self) -> None:
        self._stop.set()
        self.sock.close()


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def huge_answer(total_bytes: int, sent: list[int]) -> Callable[[socket.socket, bytes], None]:
    """Answer 200 with a body of ``total_bytes`` (streamed); ``sent`` collects how much got out."""

    def handle(conn: socket.socket, request: bytes) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % total_bytes)
        chunk = b"x" * (1 << 20)
        done = 0
        try:
            while done < total_bytes:
                conn.sendall(chunk[: total_bytes - done])
                done += min(len(chunk), total_bytes - done)
        finally:
            sent.append(done)

    return handle


def trickle(interval_s: float, stop: threading.Event) -> Callable[[socket.socket, bytes], None]:
    """Answer one byte of the status line every ``interval_s`` until ``stop`` (never a complete answer)."""

    def handle(conn: socket.socket, request: bytes) -> None:
        for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"y" * 10_000:
            if stop.wait(interval_s):
                return
            conn.sendall(bytes([byte]))

    return handle


def answer(
    status: int, headers: dict[str, str] | None = None, body: bytes = b""
) -> Callable[[socket.socket, bytes], Any]:
    """Answer every request with a fixed status, headers and body."""

    def handle(conn: socket.socket, request: bytes) -> None:
        lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    return handle


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    """Poll until ``predicate`` holds (a liveness bound for a hung test, not a performance threshold)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.02)
