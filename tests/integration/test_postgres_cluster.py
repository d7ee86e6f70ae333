"""Two servers on one PostgreSQL database: every job runs exactly once (SKIP LOCKED between processes)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from server import Server, server_env, wait_state

pytestmark = pytest.mark.postgres


def test_two_servers_share_the_queue(tmp_path: Path, pg_url: str) -> None:
    env = server_env(database_url=pg_url)
    a = Server(tmp_path / "a", env).start()
    b = Server(tmp_path / "b", env).start()
    try:
        with a.client() as c:
            ids = [
                c.post("/v1/jobs", json={"prompt": "slow:0.3", "model": "faulty", "num_frames": 6}).json()["id"]
                for _ in range(12)
            ]
            finals = [wait_state(c, job_id, {"succeeded", "failed"}, timeout=120) for job_id in ids]
            assert {f["state"] for f in finals} == {"succeeded"}
            assert {f["attempts"] for f in finals} == {1}
            nodes: Counter[str] = Counter()
            for job_id in ids:
                text = c.get(f"/v1/jobs/{job_id}/events").text
                running = [json.loads(line[6:]) for line in text.splitlines() if '"job.running"' in line]
                assert len(running) == 1 and text.count("event: job.succeeded") == 1
                nodes[running[0]["data"]["node"]] += 1
        assert sum(nodes.values()) == 12
        with b.client(a.admin_key) as c:  # B sees A's jobs (and uses A's key: the first node bootstraps)
            assert {j["id"] for j in c.get("/v1/jobs", params={"limit": 200}).json()["items"]} >= set(ids)
    finally:
        a.stop()
        b.stop()
