"""The job store on SQLite and PostgreSQL: lifecycle, claims, events, idempotency."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from reelfoundry.errors import IdempotencyConflict, InvalidTransition, NotFound
from reelfoundry.schema import JobError, JobState, VideoRequest
from reelfoundry.store import Database
from reelfoundry.store import jobs as jobstore
from reelfoundry.store.tables import AssetRow, EventRow, JobRow, utcnow


def _submit(
    db: Database, tenant: str, prompt: str = "hello", priority: str = "interactive", key: str | None = None
) -> str:
    req = VideoRequest(prompt=prompt, priority=priority, seed=1)  # type: ignore[arg-type]
    with db.write() as s:
        row = jobstore.create_job(
            s,
            tenant_id=tenant,
            request=req,
            model="template",
            max_attempts=2,
            body_hash=jobstore.request_hash(req.model_dump(mode="json")),
            idempotency_key=key,
        )
        return row.id


def _claim(db: Database, node: str = "n1") -> JobRow | None:
    with db.write() as s:
        return jobstore.claim_next(s, node, jobstore.lease_deadline(60))


def _events(db: Database, job_id: str) -> list[str]:
    with db.read() as s:
        return [e.type for e in s.scalars(select(EventRow).where(EventRow.job_id == job_id).order_by(EventRow.id))]


def _asset(job_id: str, tenant: str, asset_id: str = "01ARZ3NDEKTSV4RRFFQ69G5FAV") -> AssetRow:
    return AssetRow(
        id=asset_id,
        tenant_id=tenant,
        job_id=job_id,
        media_type="video/mp4",
        storage_key="k",
        bytes=1,
        sha256="0" * 64,
        created_at=utcnow(),
    )


def test_create_writes_job_and_queued_event(database: Database, tenant_ids: tuple[str, str]) -> None:
    job_id = _submit(database, tenant_ids[0])
    with database.read() as s:
        job = jobstore.to_job(jobstore.get_job(s, tenant_ids[0], job_id))
    assert job.state is JobState.queued and job.attempts == 0
    assert _events(database, job_id) == ["job.queued"]


def test_other_tenant_gets_not_found(database: Database, tenant_ids: tuple[str, str]) -> None:
    job_id = _submit(database, tenant_ids[0])
    with database.read() as s, pytest.raises(NotFound):
        jobstore.get_job(s, tenant_ids[1], job_id)
    with database.write() as s, pytest.raises(NotFound):
        jobstore.request_cancel(s, tenant_ids[1], job_id)


def test_claim_takes_interactive_before_batch_then_oldest(database: Database, tenant_ids: tuple[str, str]) -> None:
    batch = _submit(database, tenant_ids[0], priority="batch")
    first = _submit(database, tenant_ids[0])
    second = _submit(database, tenant_ids[0])
    order = [_claim(database) for _ in range(4)]
    assert [r.id if r else None for r in order] == [first, second, batch, None]
    assert order[0] is not None and order[0].attempts == 1 and order[0].state == "running"


def test_complete_once_and_stale_attempt_is_ignored(database: Database, tenant_ids: tuple[str, str]) -> None:
    job_id = _submit(database, tenant_ids[0])
    row = _claim(database)
    assert row is not None
    with database.write() as s:
        assert jobstore.complete(s, job_id, row.attempts, _asset(job_id, tenant_ids[0])) is not None
    with database.write() as s:
        assert (
            jobstore.complete(s, job_id, row.attempts, _asset(job_id, tenant_ids[0], "01ARZ3NDEKTSV4RRFFQ69G5FAW"))
            is None
        )
    with database.read() as s:
        assert s.scalar(select(func.count()).select_from(AssetRow)) == 1
    assert _events(database, job_id) == ["job.queued", "job.running", "job.succeeded"]


def test_fail_with_retry_requeues_until_attempts_run_out(database: Database, tenant_ids: tuple[str, str]) -> None:
    job_id = _submit(database, tenant_ids[0])
    err = JobError(type="t", detail="boom")
    for expected in ("queued", "failed"):
        row = _claim(database)
        assert row is not None
        with database.write() as s:
            after = jobstore.fail(s, job_id, row.attempts, err, retry=True)
        assert after is not None and after.state == expected
    with database.read() as s:
        final = jobstore.to_job(jobstore.get_job(s, tenant_ids[0], job_id))
    assert final.attempts == 2 and final.error is not None and final.error.detail == "boom"


def test_cancel_queued_running_and_final(database: Database, tenant_ids: tuple[str, str]) -> None:
    tenant = tenant_ids[0]
    queued = _submit(database, tenant)
    with database.write() as s:
        assert jobstore.request_cancel(s, tenant, queued).state == "cancelled"
    running = _submit(database, tenant)
    row = _claim(database)
    assert row is not None and row.id == running
    with database.write() as s:
        after = jobstore.request_cancel(s, tenant, running)
    assert after.state == "running" and after.cancel_requested
    with database.write() as s:
        assert jobstore.mark_cancelled(s, running, row.attempts) is not None
    with database.write() as s, pytest.raises(InvalidTransition):
        jobstore.request_cancel(s, tenant, running)
    assert _events(database, running)[-2:] == ["job.cancel_requested", "job.cancelled"]


def test_requeue_lost_by_node_and_by_expired_lease(database: Database, tenant_ids: tuple[str, str]) -> None:
    mine = _submit(database, tenant_ids[0])
    theirs = _submit(database, tenant_ids[0])
    assert _claim(database, "me") is not None
    assert _claim(database, "them") is not None
    with database.write() as s:
        assert [r.id for r in jobstore.requeue_lost(s, node="me")] == [mine]
    with database.write() as s:
        assert jobstore.requeue_lost(s, node=None) == []
        later = utcnow() + timedelta(seconds=120)
        assert [r.id for r in jobstore.requeue_lost(s, node=None, now=later)] == [theirs]
    assert _events(database, mine)[-1] == "job.requeued"


def test_idempotency_key_same_body_and_other_body(database: Database, tenant_ids: tuple[str, str]) -> None:
    tenant = tenant_ids[0]
    _submit(database, tenant, prompt="a", key="k1")
    same = jobstore.request_hash(VideoRequest(prompt="a", seed=1).model_dump(mode="json"))
    other = jobstore.request_hash(VideoRequest(prompt="b", seed=1).model_dump(mode="json"))
    with database.read() as s:
        assert jobstore.find_idempotent(s, tenant, "k1", same) is not None
        assert jobstore.find_idempotent(s, tenant_ids[1], "k1", other) is None
        with pytest.raises(IdempotencyConflict):
            jobstore.find_idempotent(s, tenant, "k1", other)


def test_pagination_walks_every_job_once(database: Database, tenant_ids: tuple[str, str]) -> None:
    ids = {_submit(database, tenant_ids[0]) for _ in range(7)}
    seen: list[str] = []
    cursor = None
    while True:
        with database.read() as s:
            rows, cursor = jobstore.list_jobs(s, tenant_ids[0], cursor=cursor, limit=3)
        seen += [r.id for r in rows]
        if cursor is None:
            break
    assert seen == sorted(ids, reverse=True)


def test_concurrent_claimers_never_run_a_job_twice(database: Database, tenant_ids: tuple[str, str]) -> None:
    total = 60
    for i in range(total):
        _submit(database, tenant_ids[0], prompt=f"p{i}")
    claimed: list[str] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            while True:
                row = _claim(database, f"node-{n}")
                if row is None:
                    return
                with lock:
                    claimed.append(row.id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    counts = Counter(claimed)
    assert len(counts) == total and max(counts.values()) == 1
    with database.read() as s:
        assert s.scalar(select(func.count()).select_from(JobRow).where(JobRow.attempts != 1)) == 0


def test_a_job_asked_to_cancel_is_never_requeued(database: Database, tenant_ids: tuple[str, str]) -> None:
    tenant = tenant_ids[0]
    job_id = _submit(database, tenant)
    assert _claim(database, "me") is not None
    with database.write() as s:
        jobstore.request_cancel(s, tenant, job_id)
    with database.write() as s:
        assert [r.state for r in jobstore.requeue_lost(s, node="me")] == ["cancelled"]
    assert _events(database, job_id)[-1] == "job.cancelled"


def test_release_at_shutdown_gives_the_attempt_back(database: Database, tenant_ids: tuple[str, str]) -> None:
    job_id = _submit(database, tenant_ids[0])
    other = _submit(database, tenant_ids[0])
    assert _claim(database, "me") is not None
    assert _claim(database, "them") is not None
    with database.write() as s:
        released = jobstore.release_node(s, "me")
    assert [(r.id, r.state, r.attempts) for r in released] == [(job_id, "queued", 0)]
    again = _claim(database, "me")
    assert again is not None and again.id == job_id and again.attempts == 1
    with database.read() as s:
        assert jobstore.get_job(s, tenant_ids[0], other).state == "running"


def test_store_refuses_transitions_outside_the_diagram(database: Database, tenant_ids: tuple[str, str]) -> None:
    job_id = _submit(database, tenant_ids[0])
    row = _claim(database)
    assert row is not None
    with database.write() as s, pytest.raises(InvalidTransition):
        jobstore._running(s, job_id, row.attempts, state="running")
