"""The storage lifecycle rule: hot objects unread for ``cold_after_days`` move to the cold tier, and the storage
part of their job's cost is re-priced for the days left.

- :func:`plan_moves` is pure: index rows, a time, a rule → the moves due (nothing reads a store);
- :func:`apply_moves` carries them out, each in an order that is safe to interrupt anywhere:
  copy hot → cold, check the cold size, delete the hot file, then record the tier (and re-price) in one
  transaction. A crash leaves the object readable in at least one tier (reads try hot, then cold), and the
  index still says ``hot``, so the next run plans the move again and finishes it (a copy already in cold with
  the right size and no hot file left only needs its row updated);
- :class:`LifecycleLoop` runs the rule every ``storage_lifecycle_interval_s`` in a background thread.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from reelfoundry.assets.tiered import TieredStore
from reelfoundry.store.objects import StoredObject, Tier

if TYPE_CHECKING:
    from reelfoundry.config import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rule:
    """Move a hot object to cold after ``cold_after_days`` without a read (cold objects are never deleted here)."""

    cold_after_days: float


@dataclass(frozen=True)
class Move:
    """One object to move between tiers, and why."""

    key: str
    source: Tier
    target: Tier
    bytes: int
    idle_days: float


@dataclass(frozen=True)
class Moved:
    """What one move did: ``done`` (moved, or finished after an earlier interrupted run), ``gone`` (deleted
    meanwhile) or ``failed`` (left as it was: retried next run); the re-priced storage dollars if any."""

    key: str
    outcome: str
    detail: str = ""
    storage_usd: tuple[Decimal, Decimal] | None = None


def plan_moves(objects: Iterable[StoredObject], now: datetime, rule: Rule) -> list[Move]:
    """The moves due at ``now``: hot objects whose last read (or write) is at least ``rule.cold_after_days`` old,
    longest unread first."""
    after = timedelta(days=rule.cold_after_days)
    due = [o for o in objects if o.tier == "hot" and now - o.last_access_at >= after]
    due.sort(key=lambda o: (o.last_access_at, o.key))
    return [Move(o.key, "hot", "cold", o.bytes, (now - o.last_access_at) / timedelta(days=1)) for o in due]


Reprice = Callable[[Session, StoredObject], "tuple[Decimal, Decimal] | None"]


def apply_moves(store: TieredStore, moves: Iterable[Move], reprice: Reprice | None = None) -> list[Moved]:
    """Carry out ``moves`` (hot → cold) one by one; one that fails is logged and left for the next run."""
    results = []
    for move in moves:
        try:
            results.append(_move(store, move, reprice))
        except Exception as exc:
            log.warning("moving %s to the cold tier failed; retried next run", move.key, exc_info=True)
            results.append(Moved(move.key, "failed", f"{type(exc).__name__}: {exc}"))
    return results


def _move(store: TieredStore, move: Move, reprice: Reprice | None) -> Moved:
    key = move.key
    hot = store.hot.stat(key)
    if hot is not None:
        with tempfile.TemporaryDirectory(dir=store.hot.root, prefix=".lifecycle-") as scratch:
            copy = Path(scratch) / "object"
            with store.hot.local_copy(key, Path(scratch)) as path:
                shutil.copyfile(path, copy)  # put_file consumes its source: the hot file stays until checked
            store.cold.put_file(key, copy)
        cold = store.cold.stat(key)
        if cold is None or cold.size != hot.size:
            raise OSError(f"cold copy of {key} has {cold.size if cold else 'no'} bytes, the hot one {hot.size}")
        store.hot.delete(key)
    else:  # an earlier run stopped after deleting the hot file, or the object is gone
        cold = store.cold.stat(key)
        if cold is None:
            store.index.forget(key)
            return Moved(key, "gone", "in neither tier")
    priced: list[tuple[Decimal, Decimal] | None] = [None]

    def then(session: Session, row: StoredObject) -> None:
        if reprice is not None:
            priced[0] = reprice(session, row)

    if store.index.set_tier(key, "cold", store.index.now(), then) is None:
        return Moved(key, "gone", "deleted while moving")
    return Moved(key, "done", storage_usd=priced[0])


def cost_repricer(cold_usd_per_gb_month: Decimal) -> Reprice:
    """Re-price the job whose video ``row.key`` is, for the tier it moved to (posters and other objects are not
    part of a job's cost). The lifecycle's moves to cold and a read's promotion back to hot both call it."""
    from reelfoundry.store.costs import reprice_storage
    from reelfoundry.store.tables import AssetRow

    def reprice(session: Session, row: StoredObject) -> tuple[Decimal, Decimal] | None:
        asset_id = row.key.rsplit("/", 1)[-1].split(".", 1)[0]  # <tenant>/<asset_id>.<ext> (assets.keys)
        asset = session.get(AssetRow, asset_id)
        if asset is None or asset.storage_key != row.key or asset.job_id is None or row.moved_at is None:
            return None
        return reprice_storage(
            session, asset.job_id, row.moved_at, cold_usd_per_gb_month, tier=row.tier, cold_days=row.cold_days
        )

    return reprice


def cold_price(settings: Settings) -> Decimal:
    """The cold tier's $/GB-month: ``storage_cold_tier`` ("provider/tier", or a tier of the storage provider)."""
    from reelfoundry.finops.catalog import load_catalog

    provider, _, tier = settings.storage_cold_tier.rpartition("/")
    provider = provider or settings.storage_provider or settings.worker_provider
    return load_catalog().storage_price(provider, tier).usd_per_gb_month


def run_once(settings: Settings, store: TieredStore, dry_run: bool = False) -> tuple[list[Move], list[Moved]]:
    """Plan the moves due now and (unless ``dry_run``) carry them out, re-pricing the jobs they belong to."""
    moves = plan_moves(store.index.all("hot"), store.index.now(), Rule(settings.storage_cold_after_days))
    if dry_run or not moves:
        return moves, []
    return moves, apply_moves(store, moves, cost_repricer(cold_price(settings)))


class LifecycleLoop:
    """Runs the rule every ``storage_lifecycle_interval_s`` in a daemon thread (each node runs its own: a move
    done twice at once only copies twice; the row update is idempotent)."""

    def __init__(self, settings: Settings, store: TieredStore) -> None:
        self.settings, self.store = settings, store
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reelfoundry-storage-lifecycle", daemon=True)

    @classmethod
    def start_for(cls, settings: Settings, store: object) -> LifecycleLoop | None:
        """Start the loop when ``store`` is tiered; None otherwise (nothing to do)."""
        if not isinstance(store, TieredStore):
            return None
        loop = cls(settings, store)
        loop._thread.start()
        return loop

    def _run(self) -> None:
        while not self._stop.wait(self.settings.storage_lifecycle_interval_s):
            try:
                moves, done = run_once(self.settings, self.store)
                if moves:
                    log.info("storage lifecycle: %d due, %d moved", len(moves), sum(m.outcome == "done" for m in done))
            except Exception:  # the database or a store is down: the same moves are due next time
                log.exception("the storage lifecycle run failed")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
