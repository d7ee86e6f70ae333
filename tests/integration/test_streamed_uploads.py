"""Uploads stream to a private temporary file: flat server memory, a bounded number at once, nothing left behind.

POST /v1/verify and POST /v1/assets once read the whole body into memory (three 250 MB verify uploads from
any reader key: +1.1 GB). These tests send bodies as generators (chunked, no Content-Length) to a real
server process and watch its memory, its upload slots and ``<data_dir>/tmp``.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from server import Server, server_env

MIB = 1_048_576
MP4 = {"Content-Type": "video/mp4"}
PNG = {"Content-Type": "image/png"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One upload at a time, 1 MiB images, 4 MiB verify bodies; no worker (nothing else moves)."""
    data_dir: Path = tmp_path_factory.mktemp("uploads") / "data"
    env = server_env(max_concurrent_uploads=1, max_upload_bytes=MIB, max_verify_bytes=4 * MIB, worker_slots=0)
    srv = Server(data_dir, env).start()
    yield srv
    srv.stop()


def rss_bytes(pid: int) -> int:
    """Resident memory of one process (VmRSS in /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def chunks(total: int, piece: bytes, on_each: Callable[[int], None] | None = None) -> Iterator[bytes]:
    """``total`` bytes as repeats of ``piece``; ``on_each(sent)`` after every chunk."""
    sent = 0
    while sent < total:
        data = piece[: total - sent]
        yield data
        sent += len(data)
        if on_each is not None:
            on_each(sent)


def temp_files(srv: Server) -> list[Path]:
    """What is in the server's upload temp dir (which must exist and be private)."""
    tmp = srv.data_dir / "tmp"
    assert tmp.is_dir(), "uploads are streamed to <data_dir>/tmp"
    assert stat.S_IMODE(tmp.stat().st_mode) == 0o700
    return sorted(tmp.iterdir())


def upload_in_progress(srv: Server) -> bool:
    """Whether an upload's temp file exists (its slot is taken before the file is made)."""
    tmp = srv.data_dir / "tmp"
    return tmp.is_dir() and bool(temp_files(srv))


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Poll until ``condition()`` is truthy (a deadline for a hang, not a speed test)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def media_files(srv: Server) -> set[Path]:
    media = srv.data_dir / "media"
    return {p for p in media.rglob("*") if p.is_file()} if media.is_dir() else set()


class Held:
    """A request body that sends one chunk, then waits for ``release`` (or fails, to drop the connection)."""

    def __init__(self, fail: bool = False) -> None:
        self.release = threading.Event()
        self.fail = fail

    def __iter__(self) -> Iterator[bytes]:
        yield b"\x00" * 65_536
        assert self.release.wait(60), "the test never released the held upload"
        if self.fail:
            raise RuntimeError("client gives up mid-upload")
        yield b"\x00" * 65_536


def send_in_thread(
    srv: Server, path: str, body: Any, headers: dict[str, str]
) -> tuple[threading.Thread, dict[str, Any]]:
    """POST ``body`` from another thread; the outcome (response or error) lands in the returned dict."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            with srv.client() as c:
                out["response"] = c.post(path, content=body, headers=headers)
        except Exception as exc:
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def test_a_200_mb_verify_upload_does_not_grow_server_memory(tmp_path: Path) -> None:
    srv = Server(tmp_path / "data", server_env(worker_slots=0)).start()
    assert srv.proc is not None
    pid = srv.proc.pid
    try:
        with srv.client() as c:
            # Warm up: the first verify loads the C2PA library and starts the thread pool.
            warm = c.post("/v1/verify", content=os.urandom(64 * 1024), headers=MP4)
            assert warm.status_code == 200, warm.text
            baseline = rss_bytes(pid)
            peak = baseline

            def sample(_sent: int) -> None:
                nonlocal peak
                peak = max(peak, rss_bytes(pid))

            total = 200 * MIB
            r = c.post("/v1/verify", content=chunks(total, os.urandom(MIB), sample), headers=MP4, timeout=120)
            sample(total)
        assert r.status_code == 200, r.text  # random bytes: a file without provenance, not a server error
        assert r.json()["valid"] is False and r.json()["validation_state"] == "NoManifest"
        growth = peak - baseline
        assert growth < 32 * MIB, f"server RSS grew by {growth / MIB:.1f} MiB during a 200 MiB upload"
        assert temp_files(srv) == []
    finally:
        srv.stop()


def test_a_held_upload_takes_the_only_slot_and_the_next_is_503_with_retry_after(server: Server) -> None:
    held = Held()
    thread, out = send_in_thread(server, "/v1/verify", held, MP4)
    try:
        wait_for(lambda: upload_in_progress(server), "the held upload's temp file")
        with server.client() as c:
            for path, body, headers in [("/v1/verify", b"\x00" * 100, MP4), ("/v1/assets", b"\x89PNG", PNG)]:
                busy = c.post(path, content=body, headers=headers)
                assert busy.status_code == 503, (path, busy.text)
                assert busy.headers["content-type"] == "application/problem+json"
                assert int(busy.headers["retry-after"]) >= 1
                assert busy.json()["type"].endswith("/busy")
    finally:
        held.release.set()
        thread.join(60)
    assert "error" not in out, out
    first = out["response"]
    assert first.status_code == 200 and first.json()["validation_state"] == "NoManifest", first.text
    with server.client() as c:
        again = c.post("/v1/verify", content=b"\x00" * 100, headers=MP4)
    assert again.status_code == 200, again.text
    assert temp_files(server) == []


@pytest.mark.parametrize(
    ("path", "headers", "limit"),
    [("/v1/verify", MP4, 4 * MIB), ("/v1/assets", PNG, MIB)],
)
def test_a_streamed_upload_over_the_cap_is_413_and_leaves_no_file(
    server: Server, path: str, headers: dict[str, str], limit: int
) -> None:
    before = media_files(server)
    with server.client() as c:
        r = c.post(path, content=chunks(limit + 64 * 1024, b"\x89PNG" + b"\x00" * (64 * 1024)), headers=headers)
        assert r.status_code == 413, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert temp_files(server) == []
        assert media_files(server) == before
        # The slot came back: the one upload allowed at a time goes through.
        ok = c.post("/v1/verify", content=b"\x00" * 100, headers=MP4)
        assert ok.status_code == 200, ok.text


def test_a_client_that_goes_away_mid_upload_leaves_no_file_and_frees_its_slot(server: Server) -> None:
    dropped = Held(fail=True)
    thread, out = send_in_thread(server, "/v1/verify", dropped, MP4)
    wait_for(lambda: upload_in_progress(server), "the upload's temp file")
    dropped.release.set()
    thread.join(60)
    assert "error" in out  # the client gave up
    wait_for(lambda: temp_files(server) == [], "the temp file to be removed")
    with server.client() as c:
        ok = wait_for(
            lambda: (r := c.post("/v1/verify", content=b"\x00" * 100, headers=MP4)).status_code == 200 and r,
            "the slot to be free again",
        )
    assert ok.json()["valid"] is False
