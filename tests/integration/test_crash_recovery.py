"""SIGKILL the server mid-job; after a restart the job finishes exactly once."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from server import Server, server_env, wait_state


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_job_survives_server_kill_and_finishes_once(
    tmp_path: Path, database: str, request: pytest.FixtureRequest
) -> None:
    settings = {"database_url": request.getfixturevalue("pg_url")} if database == "postgresql" else {}
    srv = Server(tmp_path / "data", server_env(**settings)).start()
    try:
        with srv.client() as c:
            job = c.post("/v1/jobs", json={"prompt": "slow:4", "model": "faulty", "num_frames": 40}).json()
            deadline = time.monotonic() + 30
            while c.get(f"/v1/jobs/{job['id']}").json()["progress"] <= 0:
                assert time.monotonic() < deadline, "job never made progress"
                time.sleep(0.05)
        srv.kill()
        srv.start()
        with srv.client() as c:
            done = wait_state(c, job["id"], {"succeeded", "failed"}, timeout=60)
            assert done["state"] == "succeeded" and done["attempts"] == 2
            assets = [a for a in c.get("/v1/assets", params={"limit": 200}).json()["items"] if a["job_id"] == job["id"]]
            assert len(assets) == 1 and assets[0]["id"] == done["asset_id"]
            events = c.get(f"/v1/jobs/{job['id']}/events").text
            assert events.count("event: job.succeeded") == 1
            assert events.count("event: job.requeued") == 1
            # Nothing left half-written in the work area.
            time.sleep(0.5)
            assert not any((srv.data_dir / "work").iterdir())
    finally:
        srv.stop()


def test_graceful_restart_gives_the_attempt_back(tmp_path: Path) -> None:
    srv = Server(tmp_path / "data", server_env()).start()
    try:
        with srv.client() as c:
            job = c.post("/v1/jobs", json={"prompt": "slow:4", "model": "faulty", "num_frames": 40}).json()
            wait_state(c, job["id"], {"running"})
        srv.stop()
        srv.start()
        with srv.client() as c:
            done = wait_state(c, job["id"], {"succeeded", "failed"}, timeout=60)
        assert done["state"] == "succeeded" and done["attempts"] == 1
    finally:
        srv.stop()


def test_second_server_on_the_same_data_dir_refuses_to_start(tmp_path: Path) -> None:
    import subprocess
    import sys

    srv = Server(tmp_path / "data", server_env()).start()
    try:
        r = subprocess.run(
            [sys.executable, "-m", "reelfoundry", "serve", "--port", "1", "--data-dir", str(srv.data_dir)],
            capture_output=True,
            text=True,
            env=server_env(),
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        assert r.returncode == 1 and "another reelfoundry server is using" in r.stderr
        assert "Traceback" not in r.stderr
    finally:
        srv.stop()
