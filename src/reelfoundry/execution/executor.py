"""Executors: where WorkItems and WorkBatches run. The engine talks only to this interface."""

from __future__ import annotations

import abc
import contextlib
import logging
import multiprocessing as mp
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess

from reelfoundry.errors import BackendError
from reelfoundry.execution.messages import Finished, Progress, WorkBatch, WorkerOutput, WorkItem, WorkUnit
from reelfoundry.execution.worker import CANCEL, OUT_OF_MEMORY_EXIT, RETIRE, memory_detail, worker_main

log = logging.getLogger(__name__)


class Executor(abc.ABC):
    """Runs WorkItems somewhere and reports their progress and results."""

    #: Its workers read inputs from and write outputs to the object store themselves (no disk shared with the
    #: engine): the engine then does not copy inputs into its work dir, and a successful ``Finished`` says where
    #: the output was stored (``Finished.stored``) instead of handing over local files.
    reads_store: bool = False

    @abc.abstractmethod
    def free_slots(self) -> int:
        """How many more units ``execute`` would accept now. Called by the engine before it claims jobs."""

    @abc.abstractmethod
    def execute(self, items: Sequence[WorkUnit]) -> None:
        """Start the units (no more than ``free_slots()``), each on one slot: a WorkItem, or a WorkBatch whose
        jobs run together; returns at once."""

    @abc.abstractmethod
    def poll(self, timeout: float, wake_fds: tuple[int, ...] = ()) -> list[WorkerOutput]:
        """Wait up to ``timeout`` s (less if a wake fd is readable) and return what the workers reported."""

    @abc.abstractmethod
    def cancel(self, job_id: str) -> None:
        """Ask the job to stop at its next step boundary (in a batch, the rest of the batch goes on)."""

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
    #: What the slot runs: one item or a batch; None when free.
    unit: WorkUnit | None = None
    #: The unit's jobs that have not reported their end yet.
    jobs: dict[str, WorkItem] = field(default_factory=dict)
    started: float = 0.0
    #: When each job's cancel message was sent (once per job: the worker reads it only at a step boundary).
    cancel_sent: dict[str, float] = field(default_factory=dict)
    #: Device seconds already reported by jobs of the unit that ended early (their share of the batch).
    charged: float = 0.0
    #: The worker ran out of memory and exits after reporting: it gets no more work and is replaced.
    retiring: bool = False

    @property
    def busy(self) -> bool:
        return self.unit is not None

    def start(self, unit: WorkUnit) -> None:
        items = unit.items if isinstance(unit, WorkBatch) else (unit,)
        self.unit, self.jobs, self.started = unit, {i.job_id: i for i in items}, time.monotonic()
        self.cancel_sent, self.charged = {}, 0.0

    def end(self, job_id: str, seconds: float) -> None:
        self.jobs.pop(job_id, None)
        self.charged += seconds
        if not self.jobs:
            self.unit = None

    def all_cancelled(self) -> float | None:
        """When the last of the unit's remaining jobs was asked to cancel, if every one was; else None."""
        if not self.jobs or any(j not in self.cancel_sent for j in self.jobs):
            return None
        return max(self.cancel_sent[j] for j in self.jobs)


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
    """A fixed pool of worker processes on this machine, one unit (an item or a batch) each at a time.

    A worker that does not reach a step boundary within ``cancel_grace_s`` of a cancel (of every job of
    its unit: a batch with jobs left keeps running), or runs past ``timeout_s``, is killed and replaced.
    With ``memory_limit_mb`` (0 = none) each worker's allocations are capped (see
    :func:`~reelfoundry.execution.worker.limit_memory`) and a watchdog kills a worker found over it on any
    poll (memory the cap does not see, such as shared mappings); either way its jobs fail saying so and a
    fresh worker takes over. A worker that dies ends every job of its unit the way it would end one job.
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
        return sum(1 for s in self._slots if not s.busy and not s.retiring)

    def running(self) -> list[str]:
        return [job_id for s in self._slots for job_id in s.jobs]

    def execute(self, items: Sequence[WorkUnit]) -> None:
        free = (s for s in self._slots if not s.busy and not s.retiring)
        for unit in items:
            slot = next(free)
            slot.start(unit)
            with contextlib.suppress(BrokenPipeError, OSError):  # a dead worker is noticed by poll()
                slot.conn.send(unit)

    def cancel(self, job_id: str) -> None:
        for slot in self._slots:
            if job_id in slot.jobs and job_id not in slot.cancel_sent:
                slot.cancel_sent[job_id] = time.monotonic()
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
            cancelled_at = slot.all_cancelled()
            if slot.retiring and not slot.busy:  # it reported running out of memory and exits
                self._replace(i)
            elif not slot.process.is_alive():
                outputs.extend(self._drain(slot))
                if slot.busy:
                    code = slot.process.exitcode
                    if slot.retiring or code == OUT_OF_MEMORY_EXIT:
                        detail = memory_detail(self._memory_limit_mb)
                    else:
                        detail = f"worker process crashed (exit code {code}) while running the backend"
                    outputs.extend(self._abandon(slot, error=detail))
                self._replace(i)
            elif self._over_memory(slot):
                if slot.busy:
                    # A cancelled job stays cancelled; any other fails for the memory it took.
                    outputs.extend(self._abandon(slot, error=memory_detail(self._memory_limit_mb)))
                self._replace(i)
            elif cancelled_at is not None and now - cancelled_at > self._cancel_grace_s:
                outputs.extend(self._abandon(slot, error=None))
                self._replace(i)
            elif slot.busy and now - slot.started > self._timeout_s:
                detail = f"backend exceeded the job timeout of {self._timeout_s:g} s and was killed"
                outputs.extend(self._abandon(slot, error=detail))
                self._replace(i)
        return outputs

    def _over_memory(self, slot: _Slot) -> bool:
        """Whether the slot's worker holds more memory than the limit (the watchdog; checked on every poll)."""
        if self._memory_limit_mb <= 0 or slot.process.pid is None:
            return False
        used = memory_in_use_mb(slot.process.pid)
        if used is None or used <= self._memory_limit_mb:
            return False
        job = ", ".join(slot.jobs) or "no job"
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
                if msg.job_id not in slot.jobs or msg.attempt != slot.jobs[msg.job_id].attempt:
                    continue
                if isinstance(msg, Finished):
                    slot.end(msg.job_id, msg.seconds)
                out.append(msg)
        except (EOFError, OSError):
            pass
        return out

    def _abandon(self, slot: _Slot, error: str | None) -> list[Finished]:
        """Kill the slot's worker and end its unit's remaining jobs: each failed with ``error``, or cancelled if
        None or if its cancel was asked; they split the unit's time not yet reported."""
        assert slot.unit is not None
        jobs, cancel_sent = list(slot.jobs.values()), slot.cancel_sent
        seconds = max(0.0, time.monotonic() - slot.started - slot.charged) / len(jobs)
        slot.unit, slot.jobs, slot.cancel_sent = None, {}, {}
        if slot.process.is_alive():
            slot.process.kill()
            slot.process.join(5)
        ended = []
        for item in jobs:
            # Whatever the worker had written for this attempt (temp files included) is garbage now.
            for leftover in item.out_dir.glob(f"*{item.job_id}-{item.attempt}*"):
                leftover.unlink(missing_ok=True)
            if error is None or item.job_id in cancel_sent:
                if error is None:
                    log.warning(
                        "job %s attempt %d: no step boundary within the cancel grace; killed",
                        item.job_id,
                        item.attempt,
                    )
                ended.append(Finished(item.job_id, item.attempt, cancelled=True, seconds=seconds))
                continue
            log.warning("job %s attempt %d: %s", item.job_id, item.attempt, error)
            ended.append(
                Finished(
                    item.job_id,
                    item.attempt,
                    error_type=BackendError.problem_type(),
                    error_detail=error,
                    seconds=seconds,
                )
            )
        return ended

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
