"""Start and stop real ``reelfoundry serve`` processes for integration tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from faulty_backend import CARD as FAULTY_CARD

SUPPORT = Path(__file__).parents[1] / "support"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """One ``reelfoundry serve`` subprocess."""

    data_dir: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    #: More ``serve`` options (``--role scheduler``).
    args: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_key(self) -> str:
        return (self.data_dir / "admin.key").read_text().strip()

    def start(self, timeout: float = 60.0) -> Server:
        log = (self.data_dir.parent / f"{self.data_dir.name}-server.log").open("ab")
        cmd = [sys.executable, "-m", "reelfoundry", "serve", "--port", str(self.port), "--data-dir", str(self.data_dir)]
        cmd += self.args
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; see {log.name}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server not ready after {timeout} s; see {log.name}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def client(self, key: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {key or self.admin_key}"}, timeout=30)


def models_file(cards: list[dict[str, Any]]) -> str:
    """A models file (``REELFOUNDRY_MODELS_FILE``) holding ``cards``, in a temporary directory; its path."""
    fd, path = tempfile.mkstemp(prefix="models-", suffix=".yaml")
    with os.fdopen(fd, "w") as out:
        yaml.safe_dump({"models": cards}, out)
    return path


def server_env(**settings: Any) -> dict[str, str]:
    """Environment for a server: the faulty test model registered, fast polling, plus overrides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELFOUNDRY_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SUPPORT), env.get("PYTHONPATH", "")]))
    env["REELFOUNDRY_MODELS_FILE"] = models_file([FAULTY_CARD])
    env["REELFOUNDRY_POLL_INTERVAL_S"] = "0.05"
    for key, value in settings.items():
        env[f"REELFOUNDRY_{key.upper()}"] = str(value)
    return env


def wait_state(client: httpx.Client, job_id: str, states: set[str], timeout: float = 60.0) -> dict[str, Any]:
    """Poll a job until it reaches one of ``states``."""
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
        if job["state"] in states:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} stuck in {job['state']} (wanted {states})")
        time.sleep(0.05)


def sse_events(client: httpx.Client, job_id: str) -> Iterator[dict[str, Any]]:
    """The job's events as the SSE stream delivers them, until it ends."""
    with client.stream("GET", f"/v1/jobs/{job_id}/events", timeout=httpx.Timeout(30, read=60)) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data: "):
                yield json.loads(line[6:])
