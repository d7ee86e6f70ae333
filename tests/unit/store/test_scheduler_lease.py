"""The scheduler lease on SQLite and PostgreSQL: election, takeover, and fencing of a deposed scheduler's writes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from reelfoundry.execution.leader import Leadership
from reelfoundry.schema import JobState, VideoRequest
from reelfoundry.store import Database
from reelfoundry.store import jobs as jobstore
from reelfoundry.store import lease as leasestore
from reelfoundry.store.tables import JobRow, SchedulerLeaseRow, utcnow


def _submit(db: Database, tenant: str) -> str:
    req = VideoRequest(prompt="hello", seed=1)
    with db.write() as s:
        row = jobstore.create_job(
            s,
            tenant_id=tenant,
            request=req,
            model="template",
            max_attempts=2,
            body_hash=jobstore.request_hash(req.model_dump(mode="json")),
        )
        return row.id


def _state(db: Database, job_id: str) -> tuple[str, int, str | None]:
    with db.read() as s:
        row = s.scalars(select(JobRow).where(JobRow.id == job_id)).one()
        return row.state, row.attempts, row.worker_node


def test_one_holder_at_a_time_and_takeover_after_expiry(database: Database) -> None:
    now = utcnow()
    with database.write() as s:
        assert leasestore.acquire(s, "a", 10, now=now) == 1
    with database.write() as s:
        assert leasestore.acquire(s, "b", 10, now=now + timedelta(seconds=5)) is None  # a still holds it
        assert leasestore.acquire(s, "a", 10, now=now + timedelta(seconds=5)) == 1  # a renews: same epoch
    with database.write() as s:
        assert leasestore.holder(s, now=now + timedelta(seconds=14)) == ("a", 1)
        assert leasestore.acquire(s, "b", 10, now=now + timedelta(seconds=16)) == 2  # a's renewal ran out
    with database.write() as s:
        assert leasestore.acquire(s, "a", 10, now=now + timedelta(seconds=17)) is None  # a cannot renew
        assert leasestore.holder(s, now=now + timedelta(seconds=17)) == ("b", 2)


def test_a_deposed_schedulers_claim_and_requeue_are_refused(database: Database, tenant_ids: tuple[str, str]) -> None:
    job_id = _submit(database, tenant_ids[0])
    with database.write() as s:
        old = leasestore.Fence("a", leasestore.acquire(s, "a", 0.6) or 0)
    with database.write() as s:  # a's lease runs out (it stalled), b takes over
        s.execute(update(SchedulerLeaseRow).values(expires_at=utcnow() - timedelta(seconds=1)))
        new = leasestore.Fence("b", leasestore.acquire(s, "b", 10) or 0)
    assert new.epoch == old.epoch + 1
    with pytest.raises(leasestore.Deposed, match="epoch 1"), database.write() as s:
        jobstore.claim_ids(s, [job_id], "node-a", jobstore.lease_deadline(60), fence=old)
    assert _state(database, job_id) == (JobState.queued.value, 0, None)  # the late write left no trace
    with pytest.raises(leasestore.Deposed), database.write() as s:
        jobstore.requeue_lost(s, node=None, fence=old)
    with database.write() as s:
        rows = jobstore.claim_ids(s, [job_id], "node-b", jobstore.lease_deadline(60), fence=new)
    assert [r.id for r in rows] == [job_id]
    assert _state(database, job_id) == (JobState.running.value, 1, "node-b")


def test_an_expired_lease_fences_even_before_anyone_takes_over(database: Database, tenant_ids: tuple[str, str]) -> None:
    job_id = _submit(database, tenant_ids[0])
    with database.write() as s:
        fence = leasestore.Fence("a", leasestore.acquire(s, "a", 10) or 0)
        s.execute(update(SchedulerLeaseRow).values(expires_at=utcnow() - timedelta(seconds=1)))
    with pytest.raises(leasestore.Deposed), database.write() as s:
        jobstore.claim_ids(s, [job_id], "node-a", jobstore.lease_deadline(60), fence=fence)
    assert _state(database, job_id)[0] == JobState.queued.value


def test_leadership_elects_one_and_a_clean_stop_hands_over_at_once(database: Database) -> None:
    changes: list[tuple[str, int | None]] = []
    a = Leadership(database, "node-a", 30, lambda f: changes.append(("a", f.epoch if f else None)))
    b = Leadership(database, "node-b", 30, lambda f: changes.append(("b", f.epoch if f else None)))
    assert a.tick() is not None and a.is_leader
    assert b.tick() is None and not b.is_leader
    assert a.tick() == leasestore.Fence(a.holder, 1)  # renewed, unchanged
    a.stop()  # releases the lease: b need not wait 30 s
    assert not a.is_leader
    fence = b.tick()
    assert fence == leasestore.Fence(b.holder, 2)
    assert changes == [("a", 1), ("a", None), ("b", 2)]
    b.lost(leasestore.Fence(b.holder, 1))  # a refusal under an older epoch does not depose the newer one
    assert b.is_leader
    b.lost(fence)
    assert not b.is_leader
    assert b.tick() == fence  # the lease is still b's: it renews under the same epoch


@pytest.mark.postgres
def test_a_claim_racing_a_takeover_waits_for_it_and_is_refused(pg_url: str) -> None:
    """The takeover holds the lease row (uncommitted) when the old leader's claim checks its fence: the claim
    waits on the row lock, then sees the new epoch and is refused, so it cannot commit after the takeover."""
    import threading

    from reelfoundry.store import keys as keystore

    db = Database(pg_url)
    db.migrate()
    try:
        with db.write() as s:
            tenant = keystore.get_or_create_tenant(s, "t").id
        job_id = _submit(db, tenant)
        with db.write() as s:
            old = leasestore.Fence("a", leasestore.acquire(s, "a", 10) or 0)
            s.execute(update(SchedulerLeaseRow).values(expires_at=utcnow() - timedelta(seconds=1)))
        taking = threading.Event()
        release = threading.Event()
        outcome: list[object] = []

        def takeover() -> None:
            with db.write() as s:
                outcome.append(leasestore.acquire(s, "b", 10))
                taking.set()
                release.wait(10)  # commit only after the claim below has started waiting

        t = threading.Thread(target=takeover)
        t.start()
        assert taking.wait(10)

        def late_claim() -> None:
            try:
                with db.write() as s:
                    jobstore.claim_ids(s, [job_id], "node-a", jobstore.lease_deadline(60), fence=old)
                outcome.append("claimed")
            except leasestore.Deposed:
                outcome.append("refused")

        c = threading.Thread(target=late_claim)
        c.start()
        c.join(1.0)
        assert c.is_alive()  # blocked on the lease row the takeover holds
        release.set()
        t.join(10)
        c.join(10)
        assert outcome == [2, "refused"]
        assert _state(db, job_id) == (JobState.queued.value, 0, None)
    finally:
        db.dispose()


def test_expiry_is_judged_by_the_database_clock_not_the_schedulers(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    with database.write() as s:
        assert leasestore.acquire(s, "a", ttl_s=30) == 1
    # b's clock runs an hour fast: by its own reading a's lease ran out long ago.
    fast = utcnow() + timedelta(hours=1)
    monkeypatch.setattr(leasestore, "utcnow", lambda: fast)
    with database.write() as s:
        taken = leasestore.acquire(s, "b", ttl_s=30)
        held = leasestore.holder(s)
    if database.dialect == "postgresql":  # the database's clock decides: a still holds it
        assert taken is None and held == ("a", 1)
    else:  # SQLite is a file on this machine: its clock is this process's (so the fast one wins here)
        assert taken == 2 and held == ("b", 2)
