"""Pending objects (store.pending) on SQLite and PostgreSQL with a store that can go down: a discard that fails
leaves the key abandoned for the sweep; the sweep deletes only keys no asset names, leaves a running attempt's
keys alone, waits out the grace for keys nobody abandoned, and backs off while the store stays down."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from fakestore import FakeStore
from sqlalchemy import select

from reelfoundry.schema import VideoRequest
from reelfoundry.store import Database, pending
from reelfoundry.store import jobs as jobstore
from reelfoundry.store.tables import AssetRow, PendingObjectRow

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def _rows(db: Database) -> dict[str, PendingObjectRow]:
    with db.read() as session:
        return {r.key: r for r in session.scalars(select(PendingObjectRow))}


def _put(store: FakeStore, *keys: str) -> None:
    for key in keys:
        store.local.put_bytes(key, b"x")


def _job(db: Database, tenant: str, claim: bool) -> tuple[str, int]:
    request = VideoRequest(prompt="p", model="builtin", seed=1)
    with db.write() as session:
        row = jobstore.create_job(
            session, tenant_id=tenant, request=request, model="builtin", max_attempts=3, body_hash="h"
        )
        if claim:
            jobstore.claim_ids(session, [row.id], "n", T0 + timedelta(hours=1), now=T0)
        return row.id, 1 if claim else 0


def test_a_failed_discard_is_swept_when_the_store_is_back_with_back_off_meanwhile(
    database: Database, tmp_path: Path
) -> None:
    store = FakeStore(tmp_path / "media")
    with database.write() as session:
        pending.record(session, ["t/a.mp4", "t/a.jpg"], job_id=None, attempt=0, node="n", now=T0)
    _put(store, "t/a.mp4")
    store.down = True
    assert pending.discard(database, store, ["t/a.mp4", "t/a.jpg"], now=T0) == 2
    rows = _rows(database)
    assert sorted(rows) == ["t/a.jpg", "t/a.mp4"] and all(r.abandoned_at == T0 for r in rows.values())
    # Still down: nothing deleted, the keys back off (2 s after the first failure), a sweep before that skips them.
    assert pending.sweep(database, store, grace_s=3600, now=T0) == (0, 2)
    assert {r.tries for r in _rows(database).values()} == {1}
    store.down = False
    assert pending.sweep(database, store, grace_s=3600, now=T0 + timedelta(seconds=1)) == (0, 0)
    assert pending.sweep(database, store, grace_s=3600, now=T0 + timedelta(seconds=2)) == (2, 0)
    assert _rows(database) == {} and store.objects() == []


def test_the_sweep_spares_named_keys_running_attempts_and_young_keys(
    database: Database, tmp_path: Path, tenant_ids: tuple[str, str]
) -> None:
    store = FakeStore(tmp_path / "media")
    running_job, attempt = _job(database, tenant_ids[0], claim=True)
    queued_job, _ = _job(database, tenant_ids[0], claim=False)
    with database.write() as session:
        pending.record(session, ["t/run.mp4"], job_id=running_job, attempt=attempt, node="n", now=T0)
        pending.record(session, ["t/old.mp4"], job_id=queued_job, attempt=1, node="n", now=T0)
        pending.record(session, ["t/young.mp4"], job_id=queued_job, attempt=2, node="n", now=T0 + timedelta(hours=1))
        pending.record(session, ["t/named.mp4"], job_id=None, attempt=0, node="n", now=T0)
        session.add(
            AssetRow(
                id="01ASSET0000000000000000000",
                tenant_id=tenant_ids[0],
                media_type="video/mp4",
                storage_key="t/named.mp4",
                bytes=1,
                sha256="0" * 64,
                review_state="pending_review",
                created_at=T0,
            )
        )
    _put(store, "t/run.mp4", "t/old.mp4", "t/young.mp4", "t/named.mp4")
    now = T0 + timedelta(hours=1, minutes=5)
    # Grace 30 min: old.mp4 (its attempt is over) goes; named.mp4 is only forgotten; the running attempt's and
    # the young key stay.
    assert pending.sweep(database, store, grace_s=1800, now=now) == (1, 0)
    assert store.objects() == ["t/named.mp4", "t/run.mp4", "t/young.mp4"]
    assert sorted(_rows(database)) == ["t/run.mp4", "t/young.mp4"]
