"""Scheduler election: a thread that takes and renews the database lease (``store.lease``).

Every ``lease_s / 3`` seconds the thread renews the lease if this process holds it, or takes it over if it
has expired. ``fence`` is what the engine's scheduler writes name (None while this process is a standby);
a write refused as :class:`~reelfoundry.store.lease.Deposed` calls :meth:`Leadership.lost`, and the process
is a standby again until it can take the lease anew.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

from reelfoundry.ids import new_id
from reelfoundry.store import Database
from reelfoundry.store import lease as leasestore

log = logging.getLogger(__name__)


class Leadership:
    """Holds (or waits for) the scheduler lease for this process."""

    def __init__(
        self,
        db: Database,
        node: str,
        lease_s: float,
        on_change: Callable[[leasestore.Fence | None], None] | None = None,
    ) -> None:
        self.db = db
        #: Unique per process life: a restart on the same node is a new holder and takes over only on expiry.
        self.holder = f"{node}:{os.getpid()}:{new_id()[-6:]}"
        self.lease_s = lease_s
        self.on_change = on_change
        self._fence: leasestore.Fence | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def fence(self) -> leasestore.Fence | None:
        """The fence to write under while this process is the leader, else None."""
        with self._lock:
            return self._fence

    @property
    def is_leader(self) -> bool:
        return self.fence is not None

    def _set(self, fence: leasestore.Fence | None) -> None:
        with self._lock:
            before, self._fence = self._fence, fence
        if before != fence:
            if fence is not None:
                log.info("scheduler lease taken by %s (epoch %d)", fence.holder, fence.epoch)
            elif before is not None:
                log.warning("scheduler lease of epoch %d lost by %s", before.epoch, before.holder)
            if self.on_change is not None:
                self.on_change(fence)

    def tick(self) -> leasestore.Fence | None:
        """Renew or take the lease once (the thread's step; tests call it directly)."""
        try:
            with self.db.write() as session:
                epoch = leasestore.acquire(session, self.holder, self.lease_s)
        except Exception:
            log.exception("could not renew the scheduler lease")
            epoch = None
        current = self.fence
        if epoch is None:
            self._set(None)
        elif current is None or current.epoch != epoch:
            self._set(leasestore.Fence(self.holder, epoch))
        return self.fence

    def lost(self, fence: leasestore.Fence) -> None:
        """A write under ``fence`` was refused: stop acting as the leader (unless a newer epoch is held already)."""
        with self._lock:
            if self._fence != fence:
                return
        self._set(None)

    def start(self) -> None:
        self.tick()
        self._thread = threading.Thread(target=self._run, name="reelfoundry-leader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            self.tick()

    def stop(self) -> None:
        """Stop renewing and give the lease up, so a standby takes over at once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        fence = self.fence
        if fence is not None:
            try:
                with self.db.write() as session:
                    leasestore.release(session, fence)
            except Exception:
                log.exception("could not release the scheduler lease (a standby takes over when it expires)")
        self._set(None)
