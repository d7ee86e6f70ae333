"""The index of tiered media objects: which tier each one is in and when it was last read (``stored_objects``).

Reads are recorded at most once per :data:`ACCESS_RESOLUTION` per object (a memo in this process, and a
conditional UPDATE across processes), so serving an object does not cost a database write per request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from reelfoundry.store.db import Database
from reelfoundry.store.tables import StoredObjectRow, utcnow

Tier = Literal["hot", "cold"]
#: The clock of the lifecycle rule ticks in days; an access time this coarse is enough.
ACCESS_RESOLUTION = timedelta(hours=1)


@dataclass(frozen=True)
class StoredObject:
    """One row of the index, detached from the database."""

    key: str
    tier: Tier
    bytes: int
    created_at: datetime
    last_access_at: datetime
    moved_at: datetime | None = None
    #: Days spent cold before the last move back to hot (closed cold periods; the current one, if cold, is not in).
    cold_days: float = 0.0


def _plain(row: StoredObjectRow) -> StoredObject:
    tier: Tier = "cold" if row.tier == "cold" else "hot"
    return StoredObject(
        row.key, tier, row.bytes, row.created_at, row.last_access_at, row.moved_at, float(row.cold_days or 0.0)
    )


class ObjectIndex:
    """``stored_objects`` on one database. ``now``: the clock (tests pass their own)."""

    def __init__(self, db: Database, now: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.now = now
        self._recorded: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def record_put(self, key: str, tier: Tier, nbytes: int) -> Tier | None:
        """A new (or overwritten) object: its tier and size; its clock starts now. Returns the tier the index had
        it in before (None: a new key)."""
        now = self.now()
        before: Tier | None = None
        with self.db.write() as session:
            row = session.get(StoredObjectRow, key)
            if row is None:
                session.add(
                    StoredObjectRow(key=key, tier=tier, bytes=nbytes, created_at=now, last_access_at=now, moved_at=None)
                )
            else:
                before = _plain(row).tier
                row.tier, row.bytes, row.created_at, row.last_access_at, row.moved_at = tier, nbytes, now, now, None
        with self._lock:
            self._recorded[key] = now
        return before

    def touch(self, key: str) -> bool:
        """Note a read of ``key``; True when it wrote (at most once per ACCESS_RESOLUTION per object)."""
        now = self.now()
        with self._lock:
            last = self._recorded.get(key)
            if last is not None and now - last < ACCESS_RESOLUTION:
                return False
            self._recorded[key] = now
            if len(self._recorded) > 100_000:  # a memo, not a cache of every key ever read
                self._recorded.clear()
        with self.db.write() as session:
            result = session.execute(
                update(StoredObjectRow)
                .where(StoredObjectRow.key == key, StoredObjectRow.last_access_at <= now - ACCESS_RESOLUTION)
                .values(last_access_at=now)
                .execution_options(synchronize_session=False)
            )
        return bool(getattr(result, "rowcount", 0))

    def get(self, key: str) -> StoredObject | None:
        """The row of ``key``, or None for an object the index does not know."""
        with self.db.read() as session:
            row = session.get(StoredObjectRow, key)
            return _plain(row) if row is not None else None

    def all(self, tier: Tier | None = None) -> list[StoredObject]:
        """Every row (of one tier), oldest access first."""
        with self.db.read() as session:
            query = select(StoredObjectRow).order_by(StoredObjectRow.last_access_at, StoredObjectRow.key)
            if tier is not None:
                query = query.where(StoredObjectRow.tier == tier)
            return [_plain(r) for r in session.scalars(query)]

    def set_tier(
        self, key: str, tier: Tier, moved_at: datetime, then: Callable[[Session, StoredObject], object] | None = None
    ) -> StoredObject | None:
        """Record that ``key`` now lives in ``tier``; ``then(session, row)`` runs in the same transaction (re-pricing).
        None when the row is gone (the object was deleted meanwhile)."""
        with self.db.write() as session:
            row = session.get(StoredObjectRow, key, with_for_update=True)
            if row is None:
                return None
            if row.tier == "cold" and tier == "hot":  # a cold period ends: it counts at the cold price for good
                since = row.moved_at or row.created_at
                row.cold_days = float(row.cold_days or 0.0) + max(0.0, (moved_at - since).total_seconds() / 86400)
            row.tier, row.moved_at = tier, moved_at
            plain = _plain(row)
            if then is not None:
                then(session, plain)
            return plain

    def forget(self, key: str) -> None:
        """The object is deleted."""
        with self.db.write() as session:
            session.execute(delete(StoredObjectRow).where(StoredObjectRow.key == key))
        with self._lock:
            self._recorded.pop(key, None)
