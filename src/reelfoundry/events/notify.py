"""Wake asyncio waiters (SSE streams) from any thread when the database changed."""

from __future__ import annotations

import asyncio
import contextlib
import threading


class ChangeNotifier:
    """A broadcast "something was committed" signal across threads and event loops.

    Streams still poll on a timeout, because writes from other processes
    (another server on the same PostgreSQL) do not pass through here.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    def notify(self) -> None:
        """Wake every waiter; safe from any thread."""
        with self._lock:
            waiters = list(self._waiters)
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(event.set)

    async def wait(self, timeout: float) -> None:
        """Return after the next notify() or after ``timeout`` seconds."""
        entry = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters.add(entry)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(entry[1].wait(), timeout)
        finally:
            with self._lock:
                self._waiters.discard(entry)
