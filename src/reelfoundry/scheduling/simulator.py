"""Replay a trace on a virtual clock against a fleet, with the fifo or the reelfoundry policy.

How cost is counted: every provisioned device is paid for the whole simulated span, from t=0 to
the later of the last arrival and the last completion, busy or idle, at its catalog $/device-hour
(a MIG-partitioned GPU is paid as one whole device). ``cost_per_video_usd`` = that total / jobs
completed; ``idle_cost_usd`` = the part of it not covered by busy device-share-seconds.
``utilization`` = busy device-share-seconds / (devices × span), so a MIG slice busy for 10 s counts
k/7 × 10 s, and the slices a partition leaves unused count as idle.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reelfoundry.errors import InvalidParameter
from reelfoundry.scheduling.fleet import Fleet
from reelfoundry.scheduling.policy import POLICIES, Placement, fifo, schedule
from reelfoundry.scheduling.profiles import PROFILES, ModelProfile
from reelfoundry.scheduling.queue import Job, JobQueue
from reelfoundry.scheduling.trace import jobs_from_records


@dataclass
class Timeline:
    """Samples taken at every event: time, queued jobs, busy share of the fleet's devices."""

    t: list[float] = field(default_factory=list)
    queued: list[int] = field(default_factory=list)
    busy: list[float] = field(default_factory=list)


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
    profiles: Mapping[str, ModelProfile] = PROFILES,
    weights: Mapping[str, float] | None = None,
    timeline: Timeline | None = None,
) -> dict[str, Any]:
    """Run the trace to completion and return the metrics (JSON-ready; see the module docstring).

    ``trace``: jobs, or trace records as :func:`gen_trace` returns them. ``timeline``: filled with
    samples for :func:`plot_timeline` when given. Deterministic: no clock, no randomness.
    """
    if policy not in POLICIES:
        raise InvalidParameter("policy", f"unknown policy {policy!r}; policies: {', '.join(POLICIES)}")
    jobs: list[Job] = (
        sorted(trace, key=lambda j: (j.t, j.id))  # type: ignore[arg-type]
        if trace and isinstance(trace[0], Job)
        else jobs_from_records(trace)  # type: ignore[arg-type]
    )
    queue = JobQueue()
    busy_until: dict[str, float] = {}
    running: list[tuple[float, int, Placement]] = []
    usage: dict[str, float] = {}
    waits: dict[str, list[float]] = {"interactive": [], "batch": []}
    busy_by_device: dict[str, float] = {}
    misses = completed = batches = 0
    busy_usd = 0.0
    last_end = 0.0
    i, seq = 0, 0
    share_busy = 0.0  # device-shares running now
    devices = fleet.devices
    fitting = {m: any(s.type.device in p.speed for s in fleet.slots) for m, p in profiles.items()}
    unplaceable = 0
    now = 0.0
    while i < len(jobs) or running or len(queue):
        next_arrival = jobs[i].t if i < len(jobs) else float("inf")
        next_end = running[0][0] if running else float("inf")
        now = min(next_arrival, next_end)
        if now == float("inf"):  # queued work that no slot can ever take
            unplaceable = len(queue)
            break
        while running and running[0][0] <= now:
            end, _, p = heapq.heappop(running)
            busy_until.pop(p.slot, None)
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
        if len(queue) and len(busy_until) < len(fleet.slots):
            if policy == "fifo":
                placements = fifo(queue, fleet, now, busy_until=busy_until, profiles=profiles)
                for p in placements:
                    queue.remove(p.jobs[0].id)
            else:
                placements = schedule(
                    queue, fleet, now, busy_until=busy_until, usage=usage, weights=weights, profiles=profiles
                )
            for p in placements:
                busy_until[p.slot] = p.end
                heapq.heappush(running, (p.end, seq, p))
                seq += 1
                batches += 1
                share_busy += p.share
                last_end = max(last_end, p.end)
                busy_usd += p.usd
                busy_by_device[p.device] = busy_by_device.get(p.device, 0.0) + p.runtime_s * p.share
                for job in p.jobs:
                    waits[job.priority].append(p.start - job.t)
                    usage[job.tenant] = usage.get(job.tenant, 0.0) + p.runtime_s * p.share / len(p.jobs)
        if timeline is not None:
            timeline.t.append(now)
            timeline.queued.append(len(queue))
            timeline.busy.append(share_busy / devices)
    span = max(last_end, jobs[-1].t if jobs else 0.0)
    fleet_usd = float(fleet.usd_per_hour) * span / 3600
    busy_total = sum(busy_by_device.values())
    utilization = busy_total / (devices * span) if span > 0 else 0.0
    return {
        "policy": policy,
        "jobs": len(jobs),
        "jobs_completed": completed,
        "jobs_unplaceable": unplaceable,
        "batches": batches,
        "span_s": round(span, 3),
        "utilization": round(utilization, 4),
        "p95_wait_s": {k: round(_percentile(v, 0.95), 3) for k, v in waits.items()},
        "p50_wait_s": {k: round(_percentile(v, 0.50), 3) for k, v in waits.items()},
        "deadline_misses": misses,
        "cost_usd": round(fleet_usd, 4),
        "cost_per_video_usd": round(fleet_usd / completed, 6) if completed else None,
        "idle_cost_usd": round(max(0.0, fleet_usd - busy_usd), 4),
        "utilization_by_cost": round(busy_usd / fleet_usd, 4) if fleet_usd > 0 else 0.0,
        "busy_s_by_device": {k: round(v, 3) for k, v in sorted(busy_by_device.items())},
    }


def plot_timeline(timeline: Timeline, path: str | Path, title: str = "") -> Path:
    """Utilisation and queue length over time, to a PNG (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(2, 1, sharex=True, figsize=(9, 5))
    hours = [t / 3600 for t in timeline.t]
    ax1.step(hours, timeline.busy, where="post")
    ax1.set_ylabel("utilisation")
    ax1.set_ylim(0, 1.05)
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
