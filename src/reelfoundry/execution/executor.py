"""Executors: where WorkItems run. The engine talks only to this interface."""

from __future__ import annotations

import abc
import contextlib
import logging
import multiprocessing as mp
import os
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess

from reelfoundry.errors import BackendError
from reelfoundry.execution.messages import Finished, Progress, WorkerOutput, WorkItem
from reelfoundry.execution.worker import CANCEL, OUT_OF_MEMORY_EXIT, RETIRE, memory_detail, worker_main

log = logging.getLogger(__name__)


class Executor(abc.ABC):
    """Runs WorkItems somewhere and reports their progress and results."""

    @abc.abstractmethod
    def free_slots(self) -> int:
        """How many more items ``execute`` would accept now. Called by the engine before it claims jobs."""

    @abc.abstractmethod
    def execute(self, items: list[WorkItem]) -> None:
        """Start the items (no more than ``free_slots()``); returns at once."""

    @abc.abstractmethod
    def poll(self, timeout: float, wake_fds: tuple[int, ...] = ()) -> list[WorkerOutput]:
        """Wait up to ``timeout`` s (less if a wake fd is readable) and return what the workers reported."""

    @abc.abstractmethod
    def cancel(self, job_id: str) -> None:
        """Ask the item of ``job_id`` to stop at its next step boundary."""

    @abc.abstractmethod
    def running(self) -> list[str]:
        """Job ids currently executing."""

    @abc.abstractmethod
    def shutdown(self) -> None:
        """Stop all workers; running items are abandoned (their jobs are re-queued on restart)."""


@dataclass
class _Slot:
    process: BaseProcess
    conn: Connection
    item: WorkItem | None = None
    started: float = 0.0
    #: When the cancel message was sent (once per item: the worker reads it only at a step boundary).
    cancel_sent: float | None = None
    #: The worker ran out of memory and exits after reporting: it gets no more work and is replaced.
    retiring: bool = False


def memory_in_use_mb(pid: int) -> float | None:
    """Resident anonymous and shared memory of process ``pid`` in MiB, from /proc; None if it cannot be read.

    Not VmRSS: that also counts mapped files (libraries' code, memory-mapped weights), page cache the kernel
    takes back when it needs to, which would fail jobs that use little memory of their own.
    """
    try:
        with open(f"/proc/{pid}/status") as status:
            fields = dict(line.split(":", 1) for line in status if ":" in line)
    except OSError:
        return None
    try:
        if "RssAnon" in fields:
            kib = int(fields["RssAnon"].split()[0]) + int(fields.get("RssShmem", "0 kB").split()[0])
        else:  # kernels before 4.5
            kib = int(fields["VmRSS"].split()[0])
    except (KeyError, ValueError):
        return None
    return kib / 1024


class LocalExecutor(Executor):
    """A fixed pool of worker processes on this machine, one item each at a time.

    A worker that does not reach a step boundary within ``cancel_grace_s`` of a cancel,
    or runs past ``timeout_s``, is killed and replaced. With ``memory_limit_mb`` (0 = none)
    each worker's allocations are capped (see :func:`~reelfoundry.execution.worker.limit_memory`)
    and a watchdog kills a worker found over it on any poll (memory the cap does not see,
    such as shared mappings); either way its job fails saying so and a fresh worker takes over.
    """

    def __init__(self, slots: int, timeout_s: float, cancel_grace_s: float = 10.0, memory_limit_mb: int = 0) -> None:
        self._ctx = mp.get_context("spawn")
        self._timeout_s = timeout_s
        self._cancel_grace_s = cancel_grace_s
        self._memory_limit_mb = memory_limit_mb
        self._slots = [self._spawn() for _ in range(slots)]

    def _spawn(self) -> _Slot:
        parent, child = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(
            target=worker_main,
            args=(child, os.getpid(), self._memory_limit_mb),
            daemon=True,
            name="reelfoundry-worker",
        )
        process.start()
        child.close()
        return _Slot(process=process, conn=parent)

    def free_slots(self) -> int:
        return sum(1 for s in self._slots if s.item is None and not s.retiring)

    def running(self) -> list[str]:
        return [s.item.job_id for s in self._slots if s.item is not None]

    def execute(self, items: list[WorkItem]) -> None:
        free = (s for s in self._slots if s.item is None and not s.retiring)
        for item in items:
            slot = next(free)
            slot.item, slot.started, slot.cancel_sent = item, time.monotonic(), None
            with contextlib.suppress(BrokenPipeError, OSError):  # a dead worker is noticed by poll()
                slot.conn.send(item)

    def cancel(self, job_id: str) -> None:
        for slot in self._slots:
            if slot.item is not None and slot.item.job_id == job_id and slot.cancel_sent is None:
                slot.cancel_sent = time.monotonic()
                with contextlib.suppress(BrokenPipeError, OSError):  # a dead worker is noticed by poll()
                    slot.conn.send((CANCEL, job_id))

    def poll(self, timeout: float, wake_fds: tuple[int, ...] = ()) -> list[WorkerOutput]:
        waitables: list[Connection | int] = [s.conn for s in self._slots]
        waitables += [s.process.sentinel for s in self._slots]
        wait([*waitables, *wake_fds], timeout=timeout)
        outputs: list[WorkerOutput] = []
        now = time.monotonic()
        for i, slot in enumerate(self._slots):
            outputs.extend(self._drain(slot))
            if slot.retiring and slot.item is None:  # it reported running out of memory and exits
                self._replace(i)
            elif not slot.process.is_alive():
                outputs.extend(self._drain(slot))
                if slot.item is not None:
                    code = slot.process.exitcode
                    if slot.retiring or code == OUT_OF_MEMORY_EXIT:
                        detail = memory_detail(self._memory_limit_mb)
                    else:
                        detail = f"worker process crashed (exit code {code}) while running the backend"
                    outputs.append(self._abandon(slot, error=detail))
                self._replace(i)
            elif self._over_memory(slot):
                if slot.item is not None:
                    # A cancelled job stays cancelled; any other fails for the memory it took.
                    error = None if slot.cancel_sent is not None else memory_detail(self._memory_limit_mb)
                    outputs.append(self._abandon(slot, error=error))
                self._replace(i)
            elif (
                slot.item is not None and slot.cancel_sent is not None and now - slot.cancel_sent > self._cancel_grace_s
            ):
                outputs.append(self._abandon(slot, error=None))
                self._replace(i)
            elif slot.item is not None and now - slot.started > self._timeout_s:
                detail = f"backend exceeded the job timeout of {self._timeout_s:g} s and was killed"
                outputs.append(self._abandon(slot, error=detail))
                self._replace(i)
        return outputs

    def _over_memory(self, slot: _Slot) -> bool:
        """Whether the slot's worker holds more memory than the limit (the watchdog; checked on every poll)."""
        if self._memory_limit_mb <= 0 or slot.process.pid is None:
            return False
        used = memory_in_use_mb(slot.process.pid)
        if used is None or used <= self._memory_limit_mb:
            return False
        job = slot.item.job_id if slot.item is not None else "no job"
        log.warning(
            "worker %d (%s) holds %.0f MiB, over its limit of %d MiB: killed",
            slot.process.pid,
            job,
            used,
            self._memory_limit_mb,
        )
        return True

    def _drain(self, slot: _Slot) -> list[WorkerOutput]:
        out: list[WorkerOutput] = []
        try:
            while slot.conn.poll():
                msg = slot.conn.recv()
                if msg == RETIRE:
                    slot.retiring = True
                    continue
                if slot.item is None or msg.job_id != slot.item.job_id:
                    continue
                if isinstance(msg, Finished):
                    slot.item = None
                out.append(msg)
        except (EOFError, OSError):
            pass
        return out

    def _abandon(self, slot: _Slot, error: str | None) -> Finished:
        """Kill the slot's worker and end its item: failed with ``error``, or cancelled if None."""
        assert slot.item is not None
        item, slot.item = slot.item, None
        if slot.process.is_alive():
            slot.process.kill()
            slot.process.join(5)
        # Whatever the worker had written for this attempt (temp files included) is garbage now.
        for leftover in item.out_dir.glob(f"*{item.job_id}-{item.attempt}*"):
            leftover.unlink(missing_ok=True)
        seconds = time.monotonic() - slot.started
        if error is None:
            log.warning(
                "job %s attempt %d: no step boundary within the cancel grace; killed", item.job_id, item.attempt
            )
            return Finished(item.job_id, item.attempt, cancelled=True, seconds=seconds)
        log.warning("job %s attempt %d: %s", item.job_id, item.attempt, error)
        return Finished(
            item.job_id, item.attempt, error_type=BackendError.problem_type(), error_detail=error, seconds=seconds
        )

    def _replace(self, index: int) -> None:
        old = self._slots[index]
        old.conn.close()
        if old.process.is_alive():
            old.process.kill()
        old.process.join(5)
        self._slots[index] = self._spawn()

    def shutdown(self) -> None:
        for slot in self._slots:
            with contextlib.suppress(BrokenPipeError, OSError):  # a dead worker is noticed by poll()
                slot.conn.send(None)
        deadline = time.monotonic() + 5
        for slot in self._slots:
            slot.process.join(max(0.0, deadline - time.monotonic()))
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join(5)
            slot.conn.close()


__all__ = ["Executor", "Finished", "LocalExecutor", "Progress"]
