"""Rate limits through real servers: one server in memory, and two API processes sharing counters in Redis."""

from __future__ import annotations

from pathlib import Path

import pytest
from server import Server, server_env

JOB = {"prompt": "x", "model": "faulty"}


def test_seventh_submission_in_a_minute_gets_429_with_retry_after(tmp_path: Path) -> None:
    srv = Server(tmp_path / "data", server_env(rate_limit_submit="6/minute")).start()
    try:
        with srv.client() as c:
            codes = [c.post("/v1/jobs", json=JOB).status_code for _ in range(6)]
            assert codes == [201] * 6
            r = c.post("/v1/jobs", json=JOB)
            assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
            assert r.headers["content-type"] == "application/problem+json"
            assert r.headers["RateLimit-Limit"] == "6" and r.headers["RateLimit-Remaining"] == "0"
    finally:
        srv.stop()


@pytest.mark.postgres
def test_two_api_processes_share_one_keys_count_in_redis(tmp_path: Path, pg_url: str) -> None:
    env = server_env(
        database_url=pg_url, rate_limit_submit="6/minute", rate_limit_storage_url="redis://127.0.0.1:6379/0"
    )
    a = Server(tmp_path / "a", env).start()
    b = Server(tmp_path / "b", env).start()
    try:
        with a.client() as ca, b.client(a.admin_key) as cb:
            codes = [(ca if i % 2 else cb).post("/v1/jobs", json=JOB).status_code for i in range(6)]
            assert codes == [201] * 6
            assert ca.post("/v1/jobs", json=JOB).status_code == 429
            assert cb.post("/v1/jobs", json=JOB).status_code == 429
            other = ca.post("/v1/keys", json={"name": "other", "role": "creator"}).json()["secret"]
        with b.client(other) as c:
            assert c.post("/v1/jobs", json=JOB).status_code == 201
    finally:
        a.stop()
        b.stop()
