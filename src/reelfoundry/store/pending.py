"""Objects written before the row that names them: recorded first, so that none is left in the store for good.

An attempt's output keys are chosen when the job is claimed and recorded here in the claim's transaction
(:func:`record`); the transaction that records the asset removes them (:func:`settle`). An attempt that fails
deletes its objects and its rows (:func:`discard`); when the store is down at that moment the rows stay, marked
abandoned, and :func:`sweep` deletes the objects once the store answers again. A row whose process died between
the write and the commit (a killed worker or engine) is swept once it is older than the grace: by then no live
attempt can still be writing it. Only keys no asset names are ever deleted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from reelfoundry.assets.objectstore import ObjectStore
from reelfoundry.schema import JobState
from reelfoundry.store.db import Database
from reelfoundry.store.tables import AssetRow, JobRow, PendingObjectRow, utcnow

log = logging.getLogger(__name__)

#: Rows looked at per sweep.
SWEEP_BATCH = 200
#: The longest wait before a failed delete is tried again.
MAX_BACKOFF_S = 60.0


def record(
    session: Session, keys: Iterable[str], *, job_id: str | None, attempt: int, node: str, now: datetime
) -> None:
    """Note that ``keys`` may be written by this attempt (in the transaction that claims the job)."""
    for key in keys:
        session.merge(PendingObjectRow(key=key, job_id=job_id, attempt=attempt, node=node, created_at=now, tries=0))


def settle(session: Session, keys: Iterable[str]) -> None:
    """The keys are named by a row now (in the transaction that writes it): no longer pending."""
    wanted = [k for k in keys if k]
    if wanted:
        session.execute(delete(PendingObjectRow).where(PendingObjectRow.key.in_(wanted)))


def _mark(session: Session, keys: list[str], **values: object) -> None:
    if keys:
        session.execute(
            update(PendingObjectRow)
            .where(PendingObjectRow.key.in_(keys))
            .values(**values)
            .execution_options(synchronize_session=False)
        )


def discard(
    db: Database, store: ObjectStore, keys: Iterable[str | None], now: datetime | None = None, *, keep: bool = False
) -> int:
    """Delete an attempt's objects that nothing will record, then their rows; a key whose delete fails (the
    store is down) stays pending, abandoned, for :func:`sweep`. ``keep``: the rows of deleted keys stay too (not
    abandoned, so swept after the grace) — for writers that may outlive the failure, such as a Ray task cut off
    from its cluster. The number of keys left to the sweep."""
    gone: list[str] = []
    left: list[str] = []
    for key in keys:
        if key is None:
            continue
        try:
            store.delete(key)
            gone.append(key)
        except Exception as exc:  # whatever the store says, the sweep tries again later
            log.warning("could not delete %s now (%s); it is left to the orphan sweep", key, exc)
            left.append(key)
    stamp = now or utcnow()
    try:
        with db.write() as session:
            if not keep:
                settle(session, gone)
            _mark(session, left, abandoned_at=stamp, next_try_at=stamp)
    except Exception:  # the database is down too: the rows stay, and the sweep takes them after the grace
        log.warning("could not update the pending objects %s", [*gone, *left], exc_info=True)
    return len(left)


def sweep(db: Database, store: ObjectStore, *, grace_s: float, now: datetime | None = None) -> tuple[int, int]:
    """Delete orphans: pending objects whose attempt abandoned them, or older than ``grace_s`` and whose attempt
    no longer runs. A key an asset names is only forgotten, never deleted. (deleted, failed) counts; a failed
    delete is tried again after a back-off. No transaction stays open while the store is called: the rows are
    taken first (``next_try_at`` pushed out, so another sweeper passes them over), then deleted."""
    now = now or utcnow()
    cutoff = now - timedelta(seconds=grace_s)
    running = (
        select(JobRow.id)
        .where(
            JobRow.id == PendingObjectRow.job_id,
            JobRow.state == JobState.running.value,
            JobRow.attempts == PendingObjectRow.attempt,
        )
        .exists()
    )
    with db.write() as session:
        stmt = (
            select(PendingObjectRow)
            .where(
                or_(PendingObjectRow.next_try_at.is_(None), PendingObjectRow.next_try_at <= now),
                or_(PendingObjectRow.abandoned_at.is_not(None), PendingObjectRow.created_at < cutoff),
                ~running,
            )
            .order_by(PendingObjectRow.created_at)
            .limit(SWEEP_BATCH)
            .with_for_update(skip_locked=True)
        )
        rows = list(session.scalars(stmt))
        keys = [r.key for r in rows]
        named = set(session.scalars(select(AssetRow.storage_key).where(AssetRow.storage_key.in_(keys))))
        named |= set(session.scalars(select(AssetRow.poster_key).where(AssetRow.poster_key.in_(keys))))
        taken: dict[str, int] = {}
        for row in rows:
            if row.key in named:
                session.delete(row)
            else:
                taken[row.key] = row.tries
                row.next_try_at = now + timedelta(seconds=MAX_BACKOFF_S)
    deleted: list[str] = []
    failed: dict[str, int] = {}
    for key, tries in taken.items():
        try:
            store.delete(key)
        except Exception as exc:  # tried again after the back-off
            failed[key] = tries + 1
            if len(failed) == 1:
                log.warning("orphan sweep: could not delete %s (%s); tried again later", key, exc)
            if len(failed) >= 3:  # the store is down: the rest wait for a later sweep
                break
            continue
        deleted.append(key)
        log.info("orphan sweep: deleted %s", key)
    # Keys not tried (the store looked down) wait as long as the last failure's.
    skipped = [k for k in taken if k not in failed and k not in deleted]
    if deleted or failed or skipped:
        later = now + timedelta(seconds=min(MAX_BACKOFF_S, 2.0 ** max(failed.values(), default=1)))
        with db.write() as session:
            settle(session, deleted)
            _mark(session, skipped, next_try_at=later)
            for key, tries in failed.items():
                _mark(session, [key], tries=tries, next_try_at=now + timedelta(seconds=min(MAX_BACKOFF_S, 2.0**tries)))
    return len(deleted), len(failed)


def abandon_node(session: Session, node: str, now: datetime) -> int:
    """Mark ``node``'s pending objects abandoned: called when that node's attempts are known to have stopped
    (its engine starting again, or stopping), so the sweep need not wait out the grace. The number marked."""
    result = session.execute(
        update(PendingObjectRow)
        .where(PendingObjectRow.node == node, PendingObjectRow.abandoned_at.is_(None))
        .values(abandoned_at=now, next_try_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def count(db: Database) -> int:
    """Objects pending now (for reports and tests)."""
    with db.read() as session:
        return len(session.scalars(select(PendingObjectRow.key)).all())
