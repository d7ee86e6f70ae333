"""Wake-ups across processes: PostgreSQL ``LISTEN/NOTIFY`` on the channel ``reelfoundry_jobs``.

Admission sends ``NOTIFY`` in the transaction that queues a job (PostgreSQL delivers it at commit, and
only then); an engine's :class:`JobListener` holds one ``LISTEN`` connection in a thread and wakes the engine
on every notification. Polling (``poll_interval_s``) stays as the fallback — a lost connection, a
notification sent while reconnecting — and is the only path on SQLite, where one process owns the database.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

CHANNEL = "reelfoundry_jobs"


def notify_jobs(session: Session) -> None:
    """Tell listening engines, once this transaction commits, that a job was queued (PostgreSQL; no-op else)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})


def libpq_url(url: str) -> str:
    """The SQLAlchemy URL (``postgresql+psycopg://…``) as a libpq connection string."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class JobListener:
    """A thread that LISTENs on :data:`CHANNEL` and calls ``wake`` per notification; it reconnects on errors."""

    def __init__(self, url: str, wake: Callable[[], None], retry_s: float = 2.0) -> None:
        self.conninfo = libpq_url(url)
        self.wake = wake
        self.retry_s = retry_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Set once the LISTEN is in place (tests wait on it).
        self.listening = threading.Event()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="reelfoundry-listen", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True, connect_timeout=10) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    self.wake()  # anything queued while no one listened
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=1.0):
                            self.wake()
            except Exception as exc:
                self.listening.clear()
                if self._stop.is_set():
                    return
                log.warning("LISTEN %s failed (%s); polling until it reconnects", CHANNEL, exc)
                self._stop.wait(self.retry_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
