"""Fallback and cooldown, in the store (SQLite and PostgreSQL): a backend failure sends the job to its route's next
model; repeated failures rest a model (the router then skips it) until the cooldown ends or a job succeeds."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import select

from reelfoundry.errors import BackendError, InvalidParameter
from reelfoundry.schema import JobError, JobState, RoutePlan, VideoRequest
from reelfoundry.store import Database
from reelfoundry.store import jobs as jobstore
from reelfoundry.store import models as modelstore
from reelfoundry.store.tables import AssetRow, EventRow, JobRow, ModelHealthRow, utcnow

BACKEND_FAILED = JobError(type=BackendError.problem_type(), detail="the vendor answered 500")


def _submit(db: Database, tenant: str, chosen: str, fallbacks: list[str]) -> str:
    req = VideoRequest(prompt="p", seed=1)
    route = RoutePlan(objective="auto", chosen=chosen, reason="test", fallbacks=fallbacks)
    with db.write() as s:
        return jobstore.create_job(
            s,
            tenant_id=tenant,
            request=req,
            model=chosen,
            max_attempts=1,
            body_hash=jobstore.request_hash(req.model_dump(mode="json")),
            route=route,
            route_cards={},
        ).id


def _run_and_fail(db: Database, error: JobError = BACKEND_FAILED) -> JobRow:
    with db.write() as s:
        row = jobstore.claim_next(s, "n1", jobstore.lease_deadline(60))
        assert row is not None
        out = jobstore.fail(s, row.id, row.attempts, error, retry=False, health=jobstore.Health(2, 30))
        assert out is not None
        return out


def test_a_backend_failure_moves_the_job_to_the_next_fallback_then_fails(
    database: Database, tenant_ids: tuple[str, str]
) -> None:
    job_id = _submit(database, tenant_ids[0], "a", ["b"])
    row = _run_and_fail(database)
    assert (row.state, row.model) == (JobState.queued.value, "b")  # max_attempts 1 does not stop a fallback
    row = _run_and_fail(database)
    assert (row.state, row.model) == (JobState.failed.value, "b")
    with database.read() as s:
        events = list(s.scalars(select(EventRow).where(EventRow.job_id == job_id).order_by(EventRow.id)))
    rerouted = [e for e in events if e.type == "job.rerouted"]
    assert len(rerouted) == 1 and (rerouted[0].data["from"], rerouted[0].data["to"]) == ("a", "b")
    assert events[-1].type == "job.failed"


def test_a_request_error_is_not_the_models_fault(database: Database, tenant_ids: tuple[str, str]) -> None:
    _submit(database, tenant_ids[0], "a", ["b"])
    bad_input = JobError(type=InvalidParameter.problem_type(), detail="inputs[0] is not an image")
    row = _run_and_fail(database, bad_input)
    assert (row.state, row.model) == (JobState.failed.value, "a")
    with database.read() as s:
        assert modelstore.cooldowns(s) == {}


def test_repeated_failures_cool_a_model_down_and_it_recovers(database: Database, tenant_ids: tuple[str, str]) -> None:
    for _ in range(2):
        _submit(database, tenant_ids[0], "flaky", [])
        _run_and_fail(database)
    with database.read() as s:
        until = modelstore.cooldowns(s)["flaky"]
        assert timedelta(seconds=25) < until - utcnow() <= timedelta(seconds=30)
        # it ends by itself
        assert "flaky" not in modelstore.cooldowns(s, now=until + timedelta(seconds=1))
    # and at once when a job of it succeeds
    job_id = _submit(database, tenant_ids[0], "flaky", [])
    with database.write() as s:
        row = jobstore.claim_next(s, "n1", jobstore.lease_deadline(60))
        assert row is not None and row.id == job_id
        asset = AssetRow(
            id="01ARZ3NDEKTSV4RRFFQ69G5FAV",
            tenant_id=tenant_ids[0],
            job_id=job_id,
            media_type="video/mp4",
            storage_key="k",
            bytes=1,
            sha256="0" * 64,
            created_at=utcnow(),
        )
        assert jobstore.complete(s, job_id, row.attempts, asset) is not None
    with database.read() as s:
        assert modelstore.cooldowns(s) == {}


def test_one_failure_below_the_threshold_rests_nothing(database: Database, tenant_ids: tuple[str, str]) -> None:
    _submit(database, tenant_ids[0], "a", [])
    _run_and_fail(database)
    with database.read() as s:
        assert modelstore.cooldowns(s) == {}


def test_the_first_failures_of_a_model_raced_by_workers_all_count(database: Database) -> None:
    # A broken model fails every job of it at once: the first failures race to create its health row.
    workers = 6
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def fail_once() -> None:
        try:
            barrier.wait(10)
            with database.write() as s:
                modelstore.record_outcome(s, "broken", ok=False, threshold=3, cooldown_s=30)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=fail_once) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    with database.read() as s:
        assert s.get(ModelHealthRow, "broken").failures == workers
        assert "broken" in modelstore.cooldowns(s)


def test_a_resting_fallback_is_stepped_over(database: Database, tenant_ids: tuple[str, str]) -> None:
    with database.write() as s:
        for _ in range(2):
            modelstore.record_outcome(s, "b", ok=False, threshold=2, cooldown_s=60)
    _submit(database, tenant_ids[0], "a", ["b", "c"])
    row = _run_and_fail(database)
    assert (row.state, row.model) == (JobState.queued.value, "c")
