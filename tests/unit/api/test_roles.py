"""``serve --role``: what each role runs and serves, bootstrap shared by nodes, and /metrics totals from one process."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from reelfoundry.api.app import create_app
from reelfoundry.config import Settings
from reelfoundry.errors import ConfigurationError
from reelfoundry.platform import Platform


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as s:
        yield s


def _client(stack: ExitStack, settings: Settings, role: str) -> tuple[TestClient, Platform]:
    """A started platform of ``role`` and a client of its app (the app's lifespan stops the platform)."""
    platform = Platform(settings, role)
    platform.start()
    return stack.enter_context(TestClient(create_app(settings, platform))), platform


def _settings(tmp_path: Path, name: str, db_url: str, **extra: Any) -> Settings:
    values: dict[str, Any] = {"data_dir": tmp_path / name, "database_url": db_url, "worker_slots": 0} | extra
    return Settings(**values)


def _jobs_total(text: str) -> float | None:
    found = [float(v) for v in re.findall(r'^reelfoundry_jobs\{state="queued"\} (\S+)$', text, re.M)]
    return sum(found) if found else None


def test_unknown_role_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="role 'boss'"):
        Platform(Settings(data_dir=tmp_path / "d"), "boss")


def test_each_role_runs_its_own_loops_and_routes(tmp_path: Path, stack: ExitStack) -> None:
    url = f"sqlite:///{tmp_path / 'rf.db'}"
    api, api_platform = _client(stack, _settings(tmp_path, "api", url), "api")
    assert api_platform.engine is None and api_platform.webhooks is None and api_platform.leader is None
    assert api.get("/healthz").status_code == 200
    assert api.get("/readyz").json()["checks"] == {"database": "ok"}
    key = (tmp_path / "api" / "admin.key").read_text().strip()
    r = api.post("/v1/jobs", json={"prompt": "queued by an API replica"}, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 201, r.text

    sched, sched_platform = _client(stack, _settings(tmp_path, "sched", url, worker_slots=1), "scheduler")
    assert sched_platform.engine is not None and sched_platform.webhooks is not None
    assert sched_platform.leader is not None and sched_platform.leader.is_leader  # SQLite: trivially the leader
    ready = sched.get("/readyz").json()
    assert ready["checks"] == {"database": "ok", "engine": "ok", "scheduler": "leader"}
    assert sched.get("/v1/jobs").status_code == 404  # probes and scrapes only
    assert sched.get("/metrics").status_code == 200
    # The second node found the operator's key in the database: it made none of its own.
    assert not (tmp_path / "sched" / "admin.key").exists()


@pytest.mark.postgres
def test_two_schedulers_one_leads_and_totals_come_from_it_alone(pg_url: str, tmp_path: Path, stack: ExitStack) -> None:
    clients = {}
    platforms = {}
    for name, role in (("api-1", "api"), ("api-2", "api"), ("sched-1", "scheduler"), ("sched-2", "scheduler")):
        clients[name], platforms[name] = _client(stack, _settings(tmp_path, name, pg_url, scheduler_lease_s=30), role)
    keys = [p for p in tmp_path.glob("*/admin.key")]
    assert [k.parent.name for k in keys] == ["api-1"]  # one bootstrap across the nodes
    key = keys[0].read_text().strip()
    for i in range(3):
        r = clients[f"api-{1 + i % 2}"].post(
            "/v1/jobs", json={"prompt": f"job {i}"}, headers={"Authorization": f"Bearer {key}"}
        )
        assert r.status_code == 201, r.text
    leaders = [n for n in ("sched-1", "sched-2") if platforms[n].exports_totals]
    assert leaders == ["sched-1"]
    assert clients["sched-2"].get("/readyz").json()["checks"]["scheduler"] == "standby"
    assert clients["sched-2"].get("/readyz").status_code == 200  # a standby is ready: it is there to take over
    totals = {n: _jobs_total(c.get("/metrics").text) for n, c in clients.items()}
    assert totals == {"api-1": None, "api-2": None, "sched-1": 3.0, "sched-2": None}  # the sum over replicas is 3
    platforms["sched-1"].leader.stop()  # type: ignore[union-attr]  # the leader goes: the standby takes over
    platforms["sched-2"].leader.tick()  # type: ignore[union-attr]
    totals = {n: _jobs_total(c.get("/metrics").text) for n, c in clients.items()}
    assert totals == {"api-1": None, "api-2": None, "sched-1": None, "sched-2": 3.0}


@pytest.mark.postgres
def test_an_admission_on_an_api_replica_wakes_the_scheduler_through_notify(
    pg_url: str, tmp_path: Path, stack: ExitStack
) -> None:
    # The scheduler polls every 10 s: a job that runs within 5 s was woken by LISTEN/NOTIFY.
    _, sched_platform = _client(
        stack, _settings(tmp_path, "sched", pg_url, worker_slots=1, poll_interval_s=10), "scheduler"
    )
    api, _ = _client(stack, _settings(tmp_path, "api", pg_url), "api")
    assert sched_platform.listener is not None and sched_platform.listener.listening.wait(10)
    time.sleep(0.5)  # the engine's first turn saw an empty queue and now waits out its poll interval
    key = (tmp_path / "sched" / "admin.key").read_text().strip()
    r = api.post(
        "/v1/jobs", json={"prompt": "wake up", "model": "template"}, headers={"Authorization": f"Bearer {key}"}
    )
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        state = api.get(f"/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {key}"}).json()["state"]
        if state != "queued":
            break
        time.sleep(0.05)
    assert state != "queued", "the scheduler was not woken"


def test_a_configured_admin_key_bootstraps_the_operator_and_is_ignored_once_it_has_keys(
    tmp_path: Path, stack: ExitStack
) -> None:
    from reelfoundry.store.keys import new_token

    url = f"sqlite:///{tmp_path / 'rf.db'}"
    first, second = new_token(), new_token()
    api, _ = _client(stack, _settings(tmp_path, "api-1", url, admin_key=first), "api")
    assert not (tmp_path / "api-1" / "admin.key").exists()  # the key lives in the operator's secret store only
    r = api.get("/v1/keys", headers={"Authorization": f"Bearer {first}"})
    assert r.status_code == 200, r.text
    assert [(k["name"], k["role"]) for k in r.json()["items"]] == [("bootstrap-admin", "admin")]
    # A second node with another key: the operator has a key already, so it is not imported.
    other, _ = _client(stack, _settings(tmp_path, "api-2", url, admin_key=second), "api")
    assert other.get("/v1/keys", headers={"Authorization": f"Bearer {second}"}).status_code == 401
    assert other.get("/v1/keys", headers={"Authorization": f"Bearer {first}"}).status_code == 200


@pytest.mark.parametrize("bad", ["hunter2", "rf_01M97NG0W6CSPCG92CN5HTJR62_short", "rf_notanid_" + "x" * 40])
def test_a_malformed_admin_key_stops_the_start_saying_why(tmp_path: Path, bad: str) -> None:
    platform = Platform(_settings(tmp_path, "n", f"sqlite:///{tmp_path / 'rf.db'}", admin_key=bad), "api")
    with pytest.raises(ConfigurationError, match="admin_key: a key"):
        platform.start()
