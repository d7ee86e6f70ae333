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
   fleet is left free for work that suits it;
6. backfilling: a slot left free because no tenant's head job suits it takes the most urgent queued
   job of any batch key that runs there (interactive first, then by deadline);
7. with ``batch_wait_s`` > 0, a partial batch of batch-class jobs waits for compatible jobs until its
   oldest job has waited ``batch_wait_s``, if its deadline still allows a full batch after that (the
   dynamic batchers' "max queue delay"; :func:`batch_wait_ends` says when to call again).

``fifo`` is the baseline: first come first served, first fit, one job per device, no batching.

``autoscale`` right-sizes the fleet, as a separate decision on the same state: it releases elastic devices
idle for ``idle_timeout_s`` and acquires released ones when the queued work would keep the held devices
busy for longer than ``backlog_s`` (see :class:`~reelfoundry.scheduling.fleet.Autoscale`). A caller
(the simulator, later the engine) applies its :class:`ScaleAction` list; a device acquired at ``at``
takes work from ``ready_at``. ``fifo`` has no autoscaler: the whole fleet stays held, as a static cluster.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from reelfoundry.scheduling.fleet import Autoscale, Fleet, Slot, SlotType, Unit
from reelfoundry.scheduling.profiles import ModelProfile, default_profiles
from reelfoundry.scheduling.queue import CLASSES, Job, JobQueue

_INF = float("inf")
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
    return profile.runs_on(slot_type.device) and (
        profile.memory_gib(batch, job.num_frames, job.width, job.height) <= slot_type.memory_gib
    )


def _runtime(profile: ModelProfile, job: Job, slot_type: SlotType, batch: int) -> float:
    base = profile.runtime_s(batch, job.num_frames, job.width, job.height, job.steps, slot_type.device)
    # A MIG slice has k/7 of the device's compute; the fixed overhead is not compute-bound.
    overhead = profile.overhead_s(slot_type.device)
    return overhead + (base - overhead) / slot_type.share


def fifo(
    queue: Iterable[Job],
    fleet: Fleet,
    now: float,
    *,
    busy_until: Mapping[str, float] | None = None,
    profiles: Mapping[str, ModelProfile] | None = None,
) -> list[Placement]:
    """The baseline: jobs in arrival order, each on the first free slot it fits, one job per slot."""
    profiles = default_profiles() if profiles is None else profiles
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
    profiles: Mapping[str, ModelProfile] | None = None,
    max_cost_ratio: float = 3.0,
    max_slowdown: float = 16.0,
    batching: bool = True,
    backfill: bool = True,
    batch_wait_s: float = 0.0,
) -> list[Placement]:
    """Placements to start now (see the module docstring for the rules).

    ``queue``: the waiting jobs (a :class:`JobQueue` is used in place: placed jobs are removed from
    it; a plain sequence is copied). ``busy_until``: slot name → when it frees (absent = free).
    ``usage``: tenant → device-seconds used so far; ``weights``: tenant → share weight (default 1).
    """
    profiles = default_profiles() if profiles is None else profiles
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
        if batch_wait_s > 0 and batching and all(j.priority == "batch" for j in candidates[:n]):
            most = profile.max_batch
            while most > n and not _fits(profile, job, slot_type, most):
                most -= 1
            hold_until = min(j.t for j in candidates[:n]) + batch_wait_s
            due = min(j.due for j in candidates[:n])
            if n < most and now < hold_until and hold_until + _runtime(profile, job, slot_type, most) <= due:
                return False  # a partial batch of batch-class work waits a while for compatible jobs
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
    # Backfill: slots still free suit none of the jobs at the tenants' heads; give them the most urgent
    # queued job of any kind that runs there (e.g. a template job deep in the queue on a free CPU).
    while free and backfill:
        keys = sorted(jq.groups(), key=lambda g: (0 if g[1] else 1, g[3], g[0]))
        if not any((job := jq.first(key)) is not None and place(job) for key, *_ in keys):
            break
    return out


#: Policies by name, as the simulator and CLI take them.
POLICIES = ("fifo", "reelfoundry")


def batch_wait_ends(queue: JobQueue, now: float, batch_wait_s: float) -> float:
    """The next time a batch-class batch held back by ``batch_wait_s`` stops waiting (inf if none)."""
    if batch_wait_s <= 0:
        return _INF
    ends = _INF
    for key, interactive, batch, _ in queue.groups():
        if interactive or not batch:
            continue
        first = queue.first(key)
        if first is not None and first.t + batch_wait_s > now:
            ends = min(ends, first.t + batch_wait_s)
    return ends


@dataclass(frozen=True)
class ScaleAction:
    """Acquire or release one physical device of the fleet (``device``: its name, e.g. ``h100-2``)."""

    action: Literal["acquire", "release"]
    device: str
    node: str
    #: When the decision takes effect (billing starts or stops).
    at: float
    #: When an acquired device can take work (``at`` + start-up); ``at`` for a release.
    ready_at: float


def _options(
    profile: ModelProfile,
    job: Job,
    types: Sequence[SlotType],
    count: int,
    max_cost_ratio: float,
    max_slowdown: float,
) -> list[tuple[float, SlotType, float]]:
    """(cost per video, slot type, slot-seconds for ``count`` such jobs) on each type ``schedule`` would use,
    cheapest first. Batch-class work is refused the types far dearer than the best, as in ``schedule``."""
    runs = []
    for t in types:
        if not _fits(profile, job, t):
            continue
        n = max(1, min(profile.max_batch, count))
        while n > 1 and not _fits(profile, job, t, n):
            n -= 1
        single = _runtime(profile, job, t, 1)
        batch_s = _runtime(profile, job, t, n)
        runs.append((t.usd_per_hour * batch_s / n, t, single, math.ceil(count / n) * batch_s))
    if not runs:
        return []
    best_usd = min(t.usd_per_hour * single for _, t, single, _ in runs)
    best_s = min(single for _, _, single, _ in runs)
    out = [
        (per_video, t, work)
        for per_video, t, single, work in runs
        if single <= max_slowdown * best_s * (1 + 1e-9)
        and (job.priority == "interactive" or t.usd_per_hour * single <= max_cost_ratio * best_usd * (1 + 1e-9))
    ]
    return sorted(out, key=lambda o: (o[0], o[1].label))


def autoscale(
    queue: JobQueue | Sequence[Job],
    fleet: Fleet,
    now: float,
    *,
    held: Mapping[str, float],
    busy_until: Mapping[str, float] | None = None,
    idle_since: Mapping[str, float] | None = None,
    settings: Autoscale | None = None,
    profiles: Mapping[str, ModelProfile] | None = None,
    max_cost_ratio: float = 3.0,
    max_slowdown: float = 16.0,
) -> list[ScaleAction]:
    """Which devices to release and which to acquire now. Pure: state in, decisions out.

    ``held``: device name → when it is (or was) ready to take work; a device not in it is released.
    ``busy_until``: slot name → when it frees; ``idle_since``: device name → when its last job ended
    (absent: since it became ready). ``settings`` default to the fleet's.

    Release: an elastic held device, ready, with every slot free for ``idle_timeout_s``, above its node's
    ``min_count``. Acquire: the queued work (interactive first, then by earliest deadline; batched as
    ``schedule`` would, on the types ``schedule`` would choose, cheapest per video first) fills the held
    and starting slots' time over the next ``backlog_s`` seconds; what is left goes to released devices,
    cheapest first, each contributing ``backlog_s - startup_s`` seconds per slot. A device is acquired if
    that work fills at least ``min_fill`` of it — or if no held device can run the work at all.
    """
    cfg = settings or fleet.autoscale
    profiles = default_profiles() if profiles is None else profiles
    busy = busy_until or {}
    idle = idle_since or {}
    nodes = {n.name: n for n in fleet.nodes}
    out: list[ScaleAction] = []
    held_per_node: dict[str, int] = {}
    for name in held:
        unit = fleet.units_by_name.get(name)
        if unit is not None:
            held_per_node[unit.node] = held_per_node.get(unit.node, 0) + 1
    released: set[str] = set()
    for unit in fleet.units:
        ready = held.get(unit.name)
        if ready is None or not unit.elastic or ready > now:
            continue
        if any(busy.get(s, 0.0) > now for s in unit.slots):
            continue
        since = max(ready, idle.get(unit.name, ready))
        if now - since >= cfg.idle_timeout_s - 1e-9 and held_per_node[unit.node] > nodes[unit.node].min_count:
            held_per_node[unit.node] -= 1
            released.add(unit.name)
            out.append(ScaleAction("release", unit.name, unit.node, now, now))

    jq = queue if isinstance(queue, JobQueue) else JobQueue(queue)
    groups = jq.groups()
    if not groups:
        return out
    horizon = cfg.backlog_s
    # Seconds each held slot type can still work within the horizon.
    held_cap: dict[SlotType, float] = {}
    for unit in fleet.units:
        if unit.name in released or unit.name not in held:
            continue
        start = max(now, held[unit.name])
        for slot in unit.slots:
            free_at = max(start, busy.get(slot, 0.0))
            held_cap[unit.type] = held_cap.get(unit.type, 0.0) + max(0.0, now + horizon - free_at)
    spare: dict[SlotType, list[Unit]] = {}
    for unit in fleet.units:
        if unit.name not in held and unit.name not in released:
            spare.setdefault(unit.type, []).append(unit)
    per_unit = {t: max(0.0, horizon - cfg.startup_s) * len(us[0].slots) for t, us in spare.items()}
    wanted: dict[SlotType, float] = {}  # work for released devices, in their slot-seconds
    must: set[SlotType] = set()  # types needed by work no held device can run
    types = list(dict.fromkeys(s.type for s in fleet.slots))
    held_types = {t for t in types if t in held_cap}
    # Interactive work first (most urgent deadline first), then batch work.
    items = [(0, due, key, n, "interactive") for key, n, _, due in groups if n]
    items += [(1, due, key, n, "batch") for key, _, n, due in groups if n]
    items.sort(key=lambda item: item[:3])
    for _, _, key, count, priority in items:
        profile = profiles.get(key[0])
        if profile is None:
            continue
        sample = Job(-1, now, "", key[0], priority, key[1], key[2], key[3], key[4])  # type: ignore[arg-type]
        options = _options(profile, sample, types, count, max_cost_ratio, max_slowdown)
        left = 1.0  # share of the group's work not yet covered
        for _, t, work in options:
            if left <= 0 or work <= 0:
                break
            take = min(held_cap.get(t, 0.0), left * work)
            held_cap[t] = held_cap.get(t, 0.0) - take
            left -= take / work
        if left <= 1e-9:
            continue
        if not any(t in held_types for _, t, _ in options):
            cheapest = next((t for _, t, _ in options if spare.get(t)), None)
            if cheapest is not None:
                must.add(cheapest)
        for _, t, work in options:
            if left <= 1e-9 or work <= 0:
                break
            room = per_unit.get(t, 0.0) * len(spare.get(t, ())) - wanted.get(t, 0.0)
            if room <= 0:
                continue
            take = min(room, left * work)
            wanted[t] = wanted.get(t, 0.0) + take
            left -= take / work
    for t, units in spare.items():
        cap = per_unit[t]
        need = math.floor(wanted.get(t, 0.0) / cap + (1 - cfg.min_fill) + 1e-9) if cap > 0 else 0
        if t in must:
            need = max(need, 1)
        for unit in units[: min(need, len(units))]:
            out.append(ScaleAction("acquire", unit.name, unit.node, now, now + cfg.startup_s))
    return out
