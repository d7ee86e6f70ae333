"""Queued jobs and an indexed queue the scheduler can take from in O(log n) per decision."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

Priority = Literal["interactive", "batch"]
#: Scheduling classes, most urgent first.
CLASSES: tuple[Priority, ...] = ("interactive", "batch")
_INF = float("inf")


@dataclass(frozen=True, slots=True)
class Job:
    """One queued generation: who asked, for what, when, and by when (absolute seconds, or None)."""

    id: int
    t: float
    tenant: str
    model: str
    priority: Priority
    num_frames: int
    width: int
    height: int
    steps: int
    deadline: float | None = None

    @property
    def batch_key(self) -> tuple[str, int, int, int, int]:
        """Jobs with equal keys can run as one batch: same model, size, frames and steps."""
        return (self.model, self.num_frames, self.width, self.height, self.steps)

    @property
    def due(self) -> float:
        """The deadline, or infinity."""
        return _INF if self.deadline is None else self.deadline


class JobQueue:
    """Jobs waiting to run, indexed by (class, tenant) and by batch key for fast scheduling.

    Each index is a heap ordered by (deadline, arrival, id); taken jobs are dropped lazily.
    """

    def __init__(self, jobs: Iterable[Job] = ()) -> None:
        self._jobs: dict[int, Job] = {}
        self._by_tenant: dict[tuple[Priority, str], list[tuple[float, float, int]]] = {}
        self._by_key: dict[tuple[str, int, int, int, int], list[tuple[int, float, float, int]]] = {}
        #: Batch key → queued jobs of it per class (interactive, batch).
        self._counts: dict[tuple[str, int, int, int, int], list[int]] = {}
        for job in jobs:
            self.push(job)

    def __len__(self) -> int:
        return len(self._jobs)

    def __iter__(self) -> Iterator[Job]:
        """Jobs in arrival (insertion) order."""
        return iter(list(self._jobs.values()))

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._jobs

    def push(self, job: Job) -> None:
        """Queue a job (ValueError if its id is queued already)."""
        if job.id in self._jobs:
            raise ValueError(f"job {job.id} is queued already")
        self._jobs[job.id] = job
        heapq.heappush(self._by_tenant.setdefault((job.priority, job.tenant), []), (job.due, job.t, job.id))
        rank = CLASSES.index(job.priority)
        heapq.heappush(self._by_key.setdefault(job.batch_key, []), (rank, job.due, job.t, job.id))
        self._counts.setdefault(job.batch_key, [0, 0])[rank] += 1

    def remove(self, job_id: int) -> Job:
        """Take a job out of the queue (KeyError if it is not queued)."""
        job = self._jobs.pop(job_id)
        counts = self._counts[job.batch_key]
        counts[CLASSES.index(job.priority)] -= 1
        if not counts[0] and not counts[1]:
            del self._counts[job.batch_key]
        return job

    def first(self, key: tuple[str, int, int, int, int]) -> Job | None:
        """The most urgent queued job with this batch key (interactive first, then deadline, arrival), or None."""
        heap = self._by_key.get(key)
        while heap and heap[0][3] not in self._jobs:
            heapq.heappop(heap)
        return self._jobs[heap[0][3]] if heap else None

    def groups(self) -> list[tuple[tuple[str, int, int, int, int], int, int, float]]:
        """Queued work by batch key: (key, interactive jobs, batch jobs, earliest deadline of its most urgent
        class, or inf).

        O(distinct keys): the counts are kept up to date by :meth:`push` and :meth:`remove`.
        """
        out = []
        for key, (interactive, batch) in self._counts.items():
            heap = self._by_key[key]
            while heap and heap[0][3] not in self._jobs:
                heapq.heappop(heap)
            out.append((key, interactive, batch, heap[0][1] if heap else _INF))
        return out

    def tenants(self, priority: Priority) -> list[str]:
        """Tenants with jobs of a class queued (possibly stale until :meth:`head` is asked)."""
        return [tenant for (cls, tenant), heap in self._by_tenant.items() if cls == priority and heap]

    def head(self, priority: Priority, tenant: str, skip: int = 0) -> Job | None:
        """A tenant's most urgent queued job of a class (the ``skip``-th after it), or None."""
        heap = self._by_tenant.get((priority, tenant))
        if not heap:
            return None
        while heap and heap[0][2] not in self._jobs:
            heapq.heappop(heap)
        if skip == 0:
            return self._jobs[heap[0][2]] if heap else None
        alive = [e for e in heapq.nsmallest(skip + 1 + 8, heap) if e[2] in self._jobs]
        return self._jobs[alive[skip][2]] if len(alive) > skip else None

    def compatible(self, job: Job, limit: int) -> list[Job]:
        """Up to ``limit`` queued jobs batchable with ``job`` (itself excluded), most urgent first."""
        heap = self._by_key.get(job.batch_key)
        if not heap or limit <= 0:
            return []
        out: list[Job] = []
        popped = []
        while heap and len(out) < limit:
            entry = heapq.heappop(heap)
            found = self._jobs.get(entry[3])
            if found is None:
                continue  # taken earlier: drop the stale entry
            popped.append(entry)
            if found.id != job.id:
                out.append(found)
        for entry in popped:
            heapq.heappush(heap, entry)
        return out
