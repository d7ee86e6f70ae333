"""The scheduler's lease: one row, taken and renewed by conditional UPDATEs, with a fencing epoch.

Exactly one process holds the lease named ``scheduler`` at a time. Taking it over (when it has expired)
adds one to ``epoch``; every write the scheduler makes on the lease's behalf calls :func:`check_fence`
in the same transaction, which row-locks the lease and refuses (:class:`Deposed`) unless this holder
still has it under that epoch and it has not expired. On PostgreSQL the row lock orders a late write
against a takeover: whichever commits second sees the other's outcome, so a deposed scheduler's claim
cannot commit after its successor took over. SQLite serialises all writers anyway.

The row is made by the migration, so taking the lease is always an UPDATE, never a racing INSERT.

Expiry is judged by the database's clock (:func:`db_now`), not each scheduler's: two schedulers whose clocks
disagree still agree on who holds the lease.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from reelfoundry.store.tables import SchedulerLeaseRow, utcnow

SCHEDULER = "scheduler"


def db_now(session: Session) -> datetime:
    """The time by the database's clock (PostgreSQL ``clock_timestamp()``); SQLite lives in this process's
    machine, whose clock it is."""
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        value = session.execute(select(func.clock_timestamp())).scalar_one()
        assert isinstance(value, datetime)
        return value
    return utcnow()


class Deposed(Exception):
    """This process no longer holds the lease under the epoch it wrote with; the write is refused."""


@dataclass(frozen=True)
class Fence:
    """What a write made on the lease's behalf names: the lease, its holder and the epoch it was taken under."""

    holder: str
    epoch: int
    name: str = SCHEDULER


def acquire(
    session: Session, holder: str, ttl_s: float, *, now: datetime | None = None, name: str = SCHEDULER
) -> int | None:
    """Renew the lease if ``holder`` has it, else take it over if it has expired (epoch + 1).

    Returns the epoch held, or None if another holder's lease is still running."""
    now = now or db_now(session)
    until = now + timedelta(seconds=ttl_s)
    renewed = session.execute(
        update(SchedulerLeaseRow)
        .where(SchedulerLeaseRow.name == name, SchedulerLeaseRow.holder == holder, SchedulerLeaseRow.expires_at > now)
        .values(expires_at=until)
        .returning(SchedulerLeaseRow.epoch)
    ).scalar_one_or_none()
    if renewed is not None:
        return int(renewed)
    taken = session.execute(
        update(SchedulerLeaseRow)
        .where(SchedulerLeaseRow.name == name, SchedulerLeaseRow.expires_at <= now)
        .values(holder=holder, epoch=SchedulerLeaseRow.epoch + 1, expires_at=until)
        .returning(SchedulerLeaseRow.epoch)
    ).scalar_one_or_none()
    return None if taken is None else int(taken)


def release(session: Session, fence: Fence, *, now: datetime | None = None) -> bool:
    """Give the lease up at a clean stop, so a standby takes over at once (only if still held under ``fence``)."""
    now = now or db_now(session)
    result = session.execute(
        update(SchedulerLeaseRow)
        .where(
            SchedulerLeaseRow.name == fence.name,
            SchedulerLeaseRow.holder == fence.holder,
            SchedulerLeaseRow.epoch == fence.epoch,
        )
        .values(expires_at=now)
        .returning(SchedulerLeaseRow.epoch)
    ).scalar_one_or_none()
    return result is not None


def check_fence(session: Session, fence: Fence, *, now: datetime | None = None) -> None:
    """Raise :class:`Deposed` unless ``fence`` still holds an unexpired lease; lock the row for the transaction."""
    now = now or db_now(session)
    row = session.execute(
        select(SchedulerLeaseRow.holder, SchedulerLeaseRow.epoch, SchedulerLeaseRow.expires_at)
        .where(SchedulerLeaseRow.name == fence.name)
        .with_for_update()
    ).one_or_none()
    if row is None or row.holder != fence.holder or row.epoch != fence.epoch or row.expires_at <= now:
        current = "nobody" if row is None else f"{row.holder or 'nobody'} (epoch {row.epoch})"
        raise Deposed(f"{fence.holder} lost the {fence.name} lease of epoch {fence.epoch}; it is now {current}'s")


def holder(session: Session, *, now: datetime | None = None, name: str = SCHEDULER) -> tuple[str, int] | None:
    """Who holds an unexpired lease and under which epoch (None if nobody)."""
    now = now or db_now(session)
    row = session.execute(
        select(SchedulerLeaseRow.holder, SchedulerLeaseRow.epoch).where(
            SchedulerLeaseRow.name == name, SchedulerLeaseRow.expires_at > now, SchedulerLeaseRow.holder != ""
        )
    ).one_or_none()
    return None if row is None else (row.holder, int(row.epoch))
