"""Start a real ``reelfoundry serve`` for a benchmark, and summarise latencies."""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(data_dir: Path, **settings: str) -> Iterator[tuple[str, str]]:
    """Run a server; yields (base URL, admin key). Stopped with SIGTERM at the end."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELFOUNDRY_")}
    env.update({f"REELFOUNDRY_{k.upper()}": v for k, v in settings.items()})
    cmd = [
        sys.executable,
        "-m",
        "reelfoundry",
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--log-level",
        "warning",
    ]
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url)
        yield url, (data_dir / "admin.key").read_text().strip()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def wait_ready(url: str, timeout_s: float = 60.0) -> None:
    """Wait until the server at ``url`` answers /readyz with 200; RuntimeError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("server did not become ready")


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0–100) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def describe(latencies_s: list[float]) -> str:
    """p50/p99/mean in milliseconds."""
    ms = [v * 1000 for v in latencies_s]
    return f"p50 {percentile(ms, 50):6.1f} ms  p99 {percentile(ms, 99):6.1f} ms  mean {statistics.fmean(ms):6.1f} ms"
