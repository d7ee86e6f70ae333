"""Replay a trace on a virtual clock against a fleet, with the fifo or the reelfoundry policy.

What is held and paid for: ``fifo`` keeps every provisioned device held for the whole simulated span
(a static cluster), from t=0 to the later of the last arrival and the last completion. The
``reelfoundry`` policy starts with the whole fleet held too, then right-sizes it with
:func:`~reelfoundry.scheduling.policy.autoscale` (``autoscaling=False`` keeps it static): elastic devices
idle ``idle_timeout_s`` are released, released ones acquired again when the queue needs them and paid
from the decision on, through their ``startup_s`` of start-up, until released or the span ends. Spot
devices are never preempted here. The reelfoundry policy also lets a partial batch of batch-class jobs
wait up to ``batch_wait_s`` for compatible ones.

Metrics (a MIG-partitioned GPU is held and paid as one whole device; a slice busy for 10 s counts
k/7 × 10 s busy, and slices a partition leaves unused count as idle):

- ``held_device_s``: device-seconds held; ``busy_device_s``: device-share-seconds running jobs;
- ``utilization`` = busy ÷ held device time; ``fleet_utilization`` = busy ÷ (every device × span), the
  figure for the whole fleet whether held or not (the two are equal for a static fleet);
  ``gpu_utilization``: busy ÷ held over GPU devices only (a CPU worker counts as one device in the others);
- ``cost_usd``: held device time at the catalog's $/device-hour; ``cost_per_video_usd`` = that ÷ jobs
  completed; ``idle_cost_usd`` = the part not covered by busy device-share-seconds (start-up included);
  ``utilization_by_cost`` = busy dollars ÷ ``cost_usd``; ``fleet_cost_usd``: the whole fleet for the span;
- ``startup_device_s``: held device time spent starting up; ``acquisitions``, ``releases``.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reelfoundry.errors import InvalidParameter
from reelfoundry.scheduling.fleet import Fleet
from reelfoundry.scheduling.policy import POLICIES, Placement, autoscale, batch_wait_ends, fifo, schedule
from reelfoundry.scheduling.profiles import ModelProfile, default_profiles
from reelfoundry.scheduling.queue import Job, JobQueue
from reelfoundry.scheduling.trace import jobs_from_records

_INF = float("inf")
#: Default seconds a partial batch of batch-class jobs waits for compatible ones (reelfoundry policy).
BATCH_WAIT_S = 300.0


@dataclass
class Timeline:
    """Samples taken at every event: time, queued jobs, busy and held shares of the fleet's devices."""

    t: list[float] = field(default_factory=list)
    queued: list[int] = field(default_factory=list)
    busy: list[float] = field(default_factory=list)
    held: list[float] = field(default_factory=list)


def _percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def simulate(
    trace: Sequence[Job] | Sequence[Mapping[str, Any]],
    fleet: Fleet,
    policy: str = "reelfoundry",
    *,
    profiles: Mapping[str, ModelProfile] | None = None,
    weights: Mapping[str, float] | None = None,
    timeline: Timeline | None = None,
    autoscaling: bool | None = None,
    batch_wait_s: float | None = None,
) -> dict[str, Any]:
    """Run the trace to completion and return the metrics (JSON-ready; see the module docstring).

    ``trace``: jobs, or trace records as :func:`gen_trace` returns them. ``timeline``: filled with
    samples for :func:`plot_timeline` when given. ``autoscaling``: right-size the fleet (default: yes
    for ``reelfoundry``; ``fifo`` never does). ``batch_wait_s``: how long a partial batch of batch-class
    jobs may wait for compatible ones (default :data:`BATCH_WAIT_S` for ``reelfoundry``; fifo never
    batches). Deterministic: no clock, no randomness.
    """
    if policy not in POLICIES:
        raise InvalidParameter("policy", f"unknown policy {policy!r}; policies: {', '.join(POLICIES)}")
    if autoscaling and policy == "fifo":
        raise InvalidParameter("autoscaling", "fifo keeps the whole fleet held: it does not autoscale")
    scaling = policy != "fifo" if autoscaling is None else autoscaling
    wait_s = (BATCH_WAIT_S if batch_wait_s is None else batch_wait_s) if policy != "fifo" else 0.0
    profiles = default_profiles() if profiles is None else profiles
    jobs: list[Job] = (
        sorted(trace, key=lambda j: (j.t, j.id))  # type: ignore[arg-type]
        if trace and isinstance(trace[0], Job)
        else jobs_from_records(trace, profiles=profiles)  # type: ignore[arg-type]
    )
    units = fleet.units
    unit_of = fleet.unit_of
    cfg = fleet.autoscale
    queue = JobQueue()
    busy_until: dict[str, float] = {}
    running: list[tuple[float, int, Placement]] = []
    usage: dict[str, float] = {}
    waits: dict[str, list[float]] = {"interactive": [], "batch": []}
    busy_by_device: dict[str, float] = {}
    busy_by_node: dict[str, float] = {}
    # Held devices: name → when ready; when acquired. Everything is held at t=0.
    held: dict[str, float] = {u.name: 0.0 for u in units}
    acquired: dict[str, float] = {u.name: 0.0 for u in units}
    idle_since: dict[str, float] = {}
    busy_slots: dict[str, int] = {}
    held_spans: list[tuple[str, float, float]] = []  # (device, from, to) of released devices
    misses = completed = batches = acquisitions = releases = 0
    busy_usd = 0.0
    last_end = 0.0
    i, seq = 0, 0
    share_busy = 0.0  # device-shares running now
    devices = fleet.devices
    fitting = {m: any(p.runs_on(s.type.device) for s in fleet.slots) for m, p in profiles.items()}
    unplaceable = 0
    now = 0.0

    def view() -> dict[str, float]:
        """busy_until as the policy sees it: released devices' slots never free, starting ones at ready."""
        out = dict(busy_until)
        for unit in units:
            ready = held.get(unit.name, _INF)
            if ready > now:
                for slot in unit.slots:
                    out[slot] = max(out.get(slot, 0.0), ready)
        return out

    def next_scale_event() -> float:
        """The next start-up to finish or idle timeout to expire (inf if none)."""
        t = _INF
        for unit in units:
            ready = held.get(unit.name)
            if ready is None:
                continue
            if ready > now:
                t = min(t, ready)
            elif unit.elastic and not busy_slots.get(unit.name):
                expiry = max(ready, idle_since.get(unit.name, ready)) + cfg.idle_timeout_s
                if expiry > now + 1e-9:
                    t = min(t, expiry)
        return t

    def place() -> None:
        nonlocal seq, batches, share_busy, last_end, busy_usd
        if not len(queue):
            return
        seen = view() if scaling else busy_until
        if sum(1 for s in fleet.slots if seen.get(s.name, 0.0) <= now) == 0:
            return
        if policy == "fifo":
            placements = fifo(queue, fleet, now, busy_until=seen, profiles=profiles)
            for p in placements:
                queue.remove(p.jobs[0].id)
        else:
            placements = schedule(
                queue,
                fleet,
                now,
                busy_until=seen,
                usage=usage,
                weights=weights,
                profiles=profiles,
                batch_wait_s=wait_s,
            )
        for p in placements:
            busy_until[p.slot] = p.end
            unit = unit_of[p.slot].name
            busy_slots[unit] = busy_slots.get(unit, 0) + 1
            heapq.heappush(running, (p.end, seq, p))
            seq += 1
            batches += 1
            share_busy += p.share
            last_end = max(last_end, p.end)
            busy_usd += p.usd
            busy_by_device[p.device] = busy_by_device.get(p.device, 0.0) + p.runtime_s * p.share
            node = unit_of[p.slot].node
            busy_by_node[node] = busy_by_node.get(node, 0.0) + p.runtime_s * p.share
            for job in p.jobs:
                waits[job.priority].append(p.start - job.t)
                usage[job.tenant] = usage.get(job.tenant, 0.0) + p.runtime_s * p.share / len(p.jobs)

    while i < len(jobs) or running or len(queue):
        next_arrival = jobs[i].t if i < len(jobs) else _INF
        next_end = running[0][0] if running else _INF
        wake = min(next_scale_event() if scaling else _INF, batch_wait_ends(queue, now, wait_s))
        now = min(next_arrival, next_end, wake)
        if now == _INF:  # queued work that no slot can ever take
            unplaceable += len(queue)
            break
        while running and running[0][0] <= now:
            end, _, p = heapq.heappop(running)
            busy_until.pop(p.slot, None)
            unit = unit_of[p.slot].name
            busy_slots[unit] -= 1
            if not busy_slots[unit]:
                idle_since[unit] = end
            share_busy -= p.share
            for job in p.jobs:
                completed += 1
                if job.deadline is not None and end > job.deadline + 1e-9:
                    misses += 1
        while i < len(jobs) and jobs[i].t <= now:
            if fitting.get(jobs[i].model, False):
                queue.push(jobs[i])
            else:
                unplaceable += 1
            i += 1
        place()
        if scaling:
            actions = autoscale(
                queue, fleet, now, held=held, busy_until=busy_until, idle_since=idle_since, profiles=profiles
            )
            for action in actions:
                if action.action == "release":
                    held_spans.append((action.device, acquired.pop(action.device), now))
                    del held[action.device]
                    releases += 1
                else:
                    held[action.device] = action.ready_at
                    acquired[action.device] = now
                    acquisitions += 1
            if any(a.action == "acquire" and a.ready_at <= now for a in actions):
                place()
        if timeline is not None:
            timeline.t.append(now)
            timeline.queued.append(len(queue))
            timeline.busy.append(share_busy / devices)
            timeline.held.append(len(held) / devices)
    span = max(last_end, jobs[-1].t if jobs else 0.0)
    held_spans.extend((name, since, span) for name, since in acquired.items())
    price = {u.name: float(u.type.usd_per_device_hour) for u in units}
    held_by_node: dict[str, float] = {}
    for name, since, to in held_spans:
        node = fleet.units_by_name[name].node
        held_by_node[node] = held_by_node.get(node, 0.0) + max(0.0, min(to, span) - since)
    held_s = sum(held_by_node.values())
    gpu_nodes = [n.name for n in fleet.nodes if n.type.device != "cpu"]
    gpu_held = sum(held_by_node.get(n, 0.0) for n in gpu_nodes)
    gpu_busy = sum(busy_by_node.get(n, 0.0) for n in gpu_nodes)
    cost_usd = sum(price[name] * max(0.0, min(to, span) - since) for name, since, to in held_spans) / 3600
    startup_s = sum(max(0.0, min(to, span, since + cfg.startup_s) - since) for _, since, to in held_spans if since > 0)
    fleet_usd = float(fleet.usd_per_hour) * span / 3600
    busy_total = sum(busy_by_device.values())
    if timeline is not None and timeline.t and timeline.t[-1] < span:
        timeline.t.append(span)
        timeline.queued.append(0)
        timeline.busy.append(0.0)
        timeline.held.append(len(held) / devices)
    return {
        "policy": policy,
        "autoscaling": scaling,
        "jobs": len(jobs),
        "jobs_completed": completed,
        "jobs_unplaceable": unplaceable,
        "batches": batches,
        "span_s": round(span, 3),
        "utilization": round(busy_total / held_s, 4) if held_s > 0 else 0.0,
        "fleet_utilization": round(busy_total / (devices * span), 4) if span > 0 else 0.0,
        "gpu_utilization": round(gpu_busy / gpu_held, 4) if gpu_held > 0 else None,
        "p95_wait_s": {k: round(_percentile(v, 0.95), 3) for k, v in waits.items()},
        "p50_wait_s": {k: round(_percentile(v, 0.50), 3) for k, v in waits.items()},
        "deadline_misses": misses,
        "cost_usd": round(cost_usd, 4),
        "cost_per_video_usd": round(cost_usd / completed, 6) if completed else None,
        "idle_cost_usd": round(max(0.0, cost_usd - busy_usd), 4),
        "utilization_by_cost": round(busy_usd / cost_usd, 4) if cost_usd > 0 else 0.0,
        "fleet_cost_usd": round(fleet_usd, 4),
        "held_device_s": round(held_s, 3),
        "busy_device_s": round(busy_total, 3),
        "mean_held_devices": round(held_s / span, 3) if span > 0 else float(devices),
        "startup_device_s": round(startup_s, 3),
        "acquisitions": acquisitions,
        "releases": releases,
        "busy_s_by_device": {k: round(v, 3) for k, v in sorted(busy_by_device.items())},
        "nodes": {
            n.name: {
                "devices": n.count,
                "held_device_s": round(held_by_node.get(n.name, 0.0), 3),
                "busy_device_s": round(busy_by_node.get(n.name, 0.0), 3),
            }
            for n in fleet.nodes
        },
    }


def plot_timeline(timeline: Timeline, path: str | Path, title: str = "") -> Path:
    """Busy and held shares of the fleet's devices, and queue length, over time, to a PNG (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(2, 1, sharex=True, figsize=(9, 5))
    hours = [t / 3600 for t in timeline.t]
    if timeline.held:
        ax1.step(hours, timeline.held, where="post", color="tab:gray", label="held devices")
    ax1.step(hours, timeline.busy, where="post", label="busy")
    ax1.set_ylabel("share of the fleet")
    ax1.set_ylim(0, 1.05)
    ax1.legend(loc="upper right", fontsize="small")
    ax2.step(hours, timeline.queued, where="post", color="tab:orange")
    ax2.set_ylabel("jobs queued")
    ax2.set_xlabel("hours")
    if title:
        ax1.set_title(title)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
