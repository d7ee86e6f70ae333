"""A TCP proxy on 127.0.0.1 that can fail like a network does: refuse every connection, or cut the uploads."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading


class FaultyProxy:
    """Forwards 127.0.0.1:``port`` to 127.0.0.1:``target_port`` until told to fail.

    ``refuse()``: every connection, open or new, is reset (an S3 server gone down behind a load balancer).
    ``cut_after(n)``: once ``n`` more bytes have gone upstream, every connection is reset and new ones too.
    ``restore()``: forward again.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self._lock = threading.Lock()
        self._down = False
        self._budget: int | None = None
        self._open: set[socket.socket] = set()
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def refuse(self) -> None:
        with self._lock:
            self._down = True
            self._reset_all()

    def cut_after(self, n: int) -> None:
        with self._lock:
            self._budget = n

    def restore(self) -> None:
        with self._lock:
            self._down, self._budget = False, None

    def close(self) -> None:
        with self._lock:
            self._down = True
            self._reset_all()
        self.sock.close()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                if self._down:
                    _reset(client)
                    continue
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
                self._open.update((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, counted: bool) -> None:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if counted and data:
                with self._lock:
                    if self._budget is not None:
                        self._budget -= len(data)
                        if self._budget < 0:
                            self._down = True
                            self._reset_all()
                            return
            if not data:
                with contextlib.suppress(OSError):
                    dst.shutdown(socket.SHUT_WR)
                return
            try:
                dst.sendall(data)
            except OSError:
                return

    def _reset_all(self) -> None:
        for s in self._open:
            _reset(s)
        self._open.clear()


def _reset(s: socket.socket) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a peer that vanished would; shutdown first wakes a thread
    blocked reading it."""
    with contextlib.suppress(OSError):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        s.close()
