"""The scheduling core: which queued jobs start on which free slots now. Pure: no clock, no database.

``schedule`` (the ReelFoundry policy) decides, each time it is called:

1. interactive before batch;
2. within a class, weighted fair share between tenants: the next job comes from the tenant with
   the least device-seconds used so far divided by its weight (``usage`` is passed in; decisions
   made in this call count too), so one tenant flooding the queue cannot starve another;
3. within a tenant, earliest deadline first (then arrival);
4. dynamic batching: compatible queued jobs (same model, size, frames, steps) join the job,
   up to the model's max batch and what fits the slot's memory;
5. the cheapest free slot type per video that fits the batch's memory and meets its earliest
   deadline (the fastest one if none can); a slot more than ``max_cost_ratio`` times as
   expensive per video (batch class) or ``max_slowdown`` times as slow as the best slot type in the
   fleet is left free for work that suits it.

``fifo`` is the baseline: first come first served, first fit, one job per device, no batching.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from reelfoundry.scheduling.fleet import Fleet, Slot, SlotType
from reelfoundry.scheduling.profiles import PROFILES, ModelProfile
from reelfoundry.scheduling.queue import CLASSES, Job, JobQueue

#: How many unplaceable heads one call steps over per tenant and class before giving up on it.
MAX_SKIPS = 4


@dataclass(frozen=True)
class Placement:
    """Start ``jobs`` (one batch) on ``slot`` at ``start``; expected to end at ``end``."""

    slot: str
    jobs: tuple[Job, ...]
    start: float
    end: float
    device: str
    share: float
    usd: float

    @property
    def runtime_s(self) -> float:
        """Expected seconds the batch runs."""
        return self.end - self.start


def _free_slots(fleet: Fleet, now: float, busy_until: Mapping[str, float] | None) -> list[Slot]:
    busy = busy_until or {}
    return [s for s in fleet.slots if busy.get(s.name, 0.0) <= now]


def _fits(profile: ModelProfile, job: Job, slot_type: SlotType, batch: int = 1) -> bool:
    return slot_type.device in profile.speed and (
        profile.memory_gib(batch, job.num_frames, job.width, job.height) <= slot_type.memory_gib
    )


def _runtime(profile: ModelProfile, job: Job, slot_type: SlotType, batch: int) -> float:
    base = profile.runtime_s(batch, job.num_frames, job.width, job.height, job.steps, slot_type.device)
    # A MIG slice has k/7 of the device's compute; the fixed overhead is not compute-bound.
    return profile.overhead_s + (base - profile.overhead_s) / slot_type.share


def fifo(
    queue: Iterable[Job],
    fleet: Fleet,
    now: float,
    *,
    busy_until: Mapping[str, float] | None = None,
    profiles: Mapping[str, ModelProfile] = PROFILES,
) -> list[Placement]:
    """The baseline: jobs in arrival order, each on the first free slot it fits, one job per slot."""
    free = _free_slots(fleet, now, busy_until)
    out: list[Placement] = []
    for job in sorted(queue, key=lambda j: (j.t, j.id)):
        if not free:
            break
        profile = profiles[job.model]
        for i, slot in enumerate(free):
            if _fits(profile, job, slot.type):
                runtime = _runtime(profile, job, slot.type, 1)
                usd = slot.type.usd_per_hour * runtime / 3600
                out.append(Placement(slot.name, (job,), now, now + runtime, slot.type.device, slot.type.share, usd))
                del free[i]
                break
    return out


def schedule(
    queue: JobQueue | Sequence[Job],
    fleet: Fleet,
    now: float,
    *,
    busy_until: Mapping[str, float] | None = None,
    usage: Mapping[str, float] | None = None,
    weights: Mapping[str, float] | None = None,
    profiles: Mapping[str, ModelProfile] = PROFILES,
    max_cost_ratio: float = 3.0,
    max_slowdown: float = 16.0,
    batching: bool = True,
) -> list[Placement]:
    """Placements to start now (see the module docstring for the rules).

    ``queue``: the waiting jobs (a :class:`JobQueue` is used in place: placed jobs are removed from
    it; a plain sequence is copied). ``busy_until``: slot name → when it frees (absent = free).
    ``usage``: tenant → device-seconds used so far; ``weights``: tenant → share weight (default 1).
    """
    jq = queue if isinstance(queue, JobQueue) else JobQueue(queue)
    free: dict[SlotType, list[Slot]] = {}
    for slot in _free_slots(fleet, now, busy_until):
        free.setdefault(slot.type, []).append(slot)
    if not free or not len(jq):
        return []
    all_types = list(dict.fromkeys(s.type for s in fleet.slots))
    used = dict(usage or {})
    weight = weights or {}
    best: dict[tuple[str, int, int, int, int], tuple[float, float]] = {}
    out: list[Placement] = []

    def best_anywhere(job: Job, profile: ModelProfile) -> tuple[float, float]:
        """(lowest cost, shortest runtime) of one such job on any slot type of the fleet; -1 if none fits."""
        key = job.batch_key
        if key not in best:
            runs = [(t, _runtime(profile, job, t, 1)) for t in all_types if _fits(profile, job, t)]
            best[key] = (min(t.usd_per_hour * r for t, r in runs), min(r for _, r in runs)) if runs else (-1.0, -1.0)
        return best[key]

    def place(job: Job) -> bool:
        profile = profiles[job.model]
        best_usd, best_s = best_anywhere(job, profile)
        if best_usd < 0:
            return False  # fits nowhere in this fleet
        mates = jq.compatible(job, profile.max_batch - 1) if batching else []
        candidates = [job, *mates]
        choice: tuple[tuple[int, float, float], SlotType, int, float] | None = None
        for slot_type in free:
            if not _fits(profile, job, slot_type):
                continue
            single = _runtime(profile, job, slot_type, 1)
            if single > max_slowdown * best_s * (1 + 1e-9):
                continue  # far slower than the fleet's best: wait for a fitting device
            if job.priority == "batch" and slot_type.usd_per_hour * single > max_cost_ratio * best_usd * (1 + 1e-9):
                continue  # far dearer per video than the fleet's best: leave it for work that suits it
            n = len(candidates)
            while n > 1 and not _fits(profile, job, slot_type, n):
                n -= 1
            runtime = _runtime(profile, job, slot_type, n)
            due = min(j.due for j in candidates[:n])
            # A smaller batch may still make the deadline (no use shrinking if even one job alone is late).
            while n > 1 and now + runtime > due and now + single <= job.due:
                n -= 1
                runtime = _runtime(profile, job, slot_type, n)
                due = min(j.due for j in candidates[:n])
            per_video = slot_type.usd_per_hour * runtime / n
            late = 0 if now + runtime <= due else 1
            rank = (late, per_video if not late else runtime, runtime)
            if choice is None or rank < choice[0]:
                choice = (rank, slot_type, n, runtime)
        if choice is None:
            return False
        _, slot_type, n, runtime = choice
        slot = free[slot_type].pop()
        if not free[slot_type]:
            del free[slot_type]
        batch = tuple(candidates[:n])
        for j in batch:
            jq.remove(j.id)
            used[j.tenant] = used.get(j.tenant, 0.0) + runtime * slot_type.share / n
        usd = slot_type.usd_per_hour * runtime / 3600
        out.append(Placement(slot.name, batch, now, now + runtime, slot_type.device, slot_type.share, usd))
        return True

    for cls in CLASSES:
        heap = [(used.get(t, 0.0) / weight.get(t, 1.0), t) for t in jq.tenants(cls)]
        heapq.heapify(heap)
        while heap and free:
            _, tenant = heapq.heappop(heap)
            skip = 0
            placed = False
            while skip <= MAX_SKIPS:
                job = jq.head(cls, tenant, skip)
                if job is None:
                    break
                if place(job):
                    placed = True
                    break
                skip += 1
            if placed and jq.head(cls, tenant) is not None:
                heapq.heappush(heap, (used.get(tenant, 0.0) / weight.get(tenant, 1.0), tenant))
    return out


#: Policies by name, as the simulator and CLI take them.
POLICIES = ("fifo", "reelfoundry")
