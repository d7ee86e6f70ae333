"""Two real ``serve --role scheduler`` processes on one PostgreSQL database and an API replica: one leads, the
leader is killed, the standby takes over within a few lease periods, a job queued meanwhile runs exactly once,
and a claim the dead leader makes under its old epoch is refused."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from server import Server, server_env, wait_state
from sqlalchemy import select

from reelfoundry.store import Database
from reelfoundry.store import jobs as jobstore
from reelfoundry.store import lease as leasestore
from reelfoundry.store.tables import JobRow

pytestmark = [pytest.mark.scaleout, pytest.mark.postgres, pytest.mark.slow]

LEASE_S = 2.0


def _scheduler_check(srv: Server) -> str:
    return str(httpx.get(f"{srv.url}/readyz", timeout=5).json()["checks"]["scheduler"])


def test_the_standby_takes_over_when_the_leader_dies_and_fences_it(tmp_path: Path, pg_url: str) -> None:
    env = server_env(database_url=pg_url, scheduler_lease_s=LEASE_S, worker_slots=1)
    first = Server(tmp_path / "s1", env, args=("--role", "scheduler")).start()
    second = Server(tmp_path / "s2", env, args=("--role", "scheduler")).start()
    api = Server(tmp_path / "api", server_env(database_url=pg_url), args=("--role", "api", "--worker-slots", "0"))
    api.start()
    db = Database(pg_url)
    try:
        assert (_scheduler_check(first), _scheduler_check(second)) == ("leader", "standby")
        with db.read() as s:
            held = leasestore.holder(s)
        assert held is not None
        old = leasestore.Fence(*held)
        key = first.admin_key  # the first node bootstrapped; the others wrote no key of their own
        assert not (tmp_path / "s2" / "admin.key").exists() and not (tmp_path / "api" / "admin.key").exists()
        with api.client(key) as c:
            assert c.get("/metrics").text.count("reelfoundry_jobs{") == 0  # totals come from the leader alone

            first.kill()  # the leader dies without releasing its lease
            killed = time.monotonic()
            job_id = c.post("/v1/jobs", json={"prompt": "after the failover", "model": "template"}).json()["id"]
            while _scheduler_check(second) != "leader":
                assert time.monotonic() - killed < 4 * LEASE_S, "the standby did not take over"
                time.sleep(0.1)
            final = wait_state(c, job_id, {"succeeded", "failed"}, timeout=120)
            assert final["state"] == "succeeded" and final["attempts"] == 1
            text = c.get(f"/v1/jobs/{job_id}/events").text
            running = [json.loads(line[6:]) for line in text.splitlines() if '"job.running"' in line]
            assert len(running) == 1 and text.count("event: job.succeeded") == 1

            with db.read() as s:
                now_held = leasestore.holder(s)
            assert now_held is not None and now_held[1] == old.epoch + 1
            # The dead leader's late claim, made under its old epoch, is refused and leaves the job queued.
            late = c.post("/v1/jobs", json={"prompt": "a late claim", "model": "template"}).json()["id"]
        with pytest.raises(leasestore.Deposed), db.write() as s:
            jobstore.claim_ids(s, [late], "dead-node", jobstore.lease_deadline(60), fence=old)
        with db.read() as s:
            row = s.scalars(select(JobRow).where(JobRow.id == late)).one()
            assert row.worker_node != "dead-node"
    finally:
        db.dispose()
        api.stop()
        second.stop()
        first.stop()


def test_an_api_role_with_several_processes_admits_into_one_database(tmp_path: Path, pg_url: str) -> None:
    env = server_env(database_url=pg_url, rate_limit_submit="")
    api = Server(tmp_path / "api", env, args=("--role", "api", "--workers", "2")).start()
    try:
        assert api.proc is not None
        children = Path(f"/proc/{api.proc.pid}/task/{api.proc.pid}/children")
        deadline = time.monotonic() + 30
        while len(children.read_text().split()) < 2:  # uvicorn's two worker processes (and its helper)
            assert time.monotonic() < deadline, "the API processes did not start"
            time.sleep(0.1)
        with api.client() as c:
            ids = [c.post("/v1/jobs", json={"prompt": f"{i}", "model": "template"}).json()["id"] for i in range(20)]
            assert len(set(ids)) == 20
            listed = {j["id"] for j in c.get("/v1/jobs", params={"limit": 100}).json()["items"]}
            assert listed >= set(ids)
            assert c.get("/readyz").json()["checks"] == {"database": "ok"}
    finally:
        api.stop()
