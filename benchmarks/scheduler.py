"""Scheduler: the reelfoundry policy against fifo on every shipped fleet and trace, and decision time.

Every shipped fleet (``examples/fleets/*.yaml``) runs every shipped trace (``examples/traces/*.jsonl``)
and fresh ``gen_trace`` traces (2000 jobs, seeds 7 11 23 by default), each with three policies on the
same virtual clock: ``fifo`` (first come first served, first fit, one job per device, no batching, the
whole fleet held), ``reelfoundry`` on the static fleet (``--static``: no autoscaling, to show what the
placement alone buys) and ``reelfoundry`` right-sizing the fleet (the default). Ratios are reelfoundry ÷
fifo, judged against issue 15's targets — cost per video <= 0.75x, interactive p95 queue wait <= 0.5x,
utilisation (busy ÷ held device time) >= 85 %, deadline misses no more than fifo — and the goal beyond
them: <= 0.6x cost at >= 90 % utilisation. Then the time of one scheduling decision with 10,000 jobs
queued (one free slot per call, so each call is one decision) for fifo and reelfoundry, and of one
autoscale decision, in the same run.

    python benchmarks/scheduler.py [--jobs 2000] [--seeds 7 11 23] [--queued 10000] [--decisions 200] [--json]
        [--autoscale '{"startup_s": 120, "idle_timeout_s": 120}']     # sensitivity: other autoscale settings
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from pathlib import Path
from typing import Any

from reelfoundry.scheduling import (
    Autoscale,
    JobQueue,
    autoscale,
    fifo,
    gen_trace,
    jobs_from_records,
    load_fleet,
    load_trace,
    schedule,
    simulate,
)
from reelfoundry.scheduling.fleet import parse_autoscale
from reelfoundry.scheduling.queue import Job
from reelfoundry.scheduling.simulator import BATCH_WAIT_S

EXAMPLES = Path(__file__).parents[1] / "examples"
TARGETS = {"cost": 0.75, "p95_interactive": 0.5, "utilization": 0.85}
GOAL = {"cost": 0.6, "utilization": 0.90}


def _ratio(ours: float | None, base: float | None) -> float | None:
    if ours is None or base is None:
        return None
    return round(ours / base, 3) if base > 0 else (1.0 if ours == 0 else None)


def row(
    fleet_name: str, trace_name: str, jobs: list[Job], fleet_path: Path, settings: Autoscale | None = None
) -> dict[str, Any]:
    """fifo, static reelfoundry and autoscaling reelfoundry on one fleet and trace; the ratios and verdicts."""
    fleet = load_fleet(fleet_path)
    if settings is not None:
        fleet = dataclasses.replace(fleet, autoscale=settings)
    base = simulate(jobs, fleet, "fifo")
    static = simulate(jobs, fleet, "reelfoundry", autoscaling=False)
    ours = simulate(jobs, fleet, "reelfoundry")
    cost = _ratio(ours["cost_per_video_usd"], base["cost_per_video_usd"])
    p95 = _ratio(ours["p95_wait_s"]["interactive"], base["p95_wait_s"]["interactive"])
    out: dict[str, Any] = {
        "fleet": fleet_name,
        "trace": trace_name,
        "jobs": len(jobs),
        "cost_per_video_ratio": cost,
        "cost_per_video_ratio_static": _ratio(static["cost_per_video_usd"], base["cost_per_video_usd"]),
        "p95_interactive_ratio": p95,
        "p95_batch_ratio": _ratio(ours["p95_wait_s"]["batch"], base["p95_wait_s"]["batch"]),
        "utilization": {"fifo": base["utilization"], "static": static["utilization"], "ours": ours["utilization"]},
        "fleet_utilization_ours": ours["fleet_utilization"],
        "gpu_utilization_ours": ours["gpu_utilization"],
        "utilization_by_cost_ours": ours["utilization_by_cost"],
        "deadline_misses": {
            "fifo": base["deadline_misses"],
            "static": static["deadline_misses"],
            "ours": ours["deadline_misses"],
        },
        "cost_per_video_usd": {
            "fifo": base["cost_per_video_usd"],
            "static": static["cost_per_video_usd"],
            "ours": ours["cost_per_video_usd"],
        },
        "mean_held_devices": {"fleet": fleet.devices, "ours": ours["mean_held_devices"]},
        "acquisitions": ours["acquisitions"],
        "jobs_completed": {"fifo": base["jobs_completed"], "ours": ours["jobs_completed"]},
    }
    out["targets_met"] = {
        "cost": cost is not None and cost <= TARGETS["cost"],
        "p95_interactive": p95 is not None and p95 <= TARGETS["p95_interactive"],
        "utilization": ours["utilization"] >= TARGETS["utilization"],
        "deadline_misses": ours["deadline_misses"] <= base["deadline_misses"],
    }
    out["goal_met"] = cost is not None and cost <= GOAL["cost"] and ours["utilization"] >= GOAL["utilization"]
    return out


def compare(jobs: int, seeds: list[int], settings: Autoscale | None = None) -> list[dict[str, Any]]:
    """Every shipped fleet × (every shipped trace + a fresh trace per seed)."""
    traces: list[tuple[str, list[Job]]] = [
        (p.name, load_trace(p)) for p in sorted((EXAMPLES / "traces").glob("*.jsonl"))
    ]
    traces += [(f"gen-trace {jobs} seed {s}", jobs_from_records(gen_trace(jobs, s))) for s in seeds]
    return [
        row(fleet_path.stem, name, trace, fleet_path, settings)
        for fleet_path in sorted((EXAMPLES / "fleets").glob("*.yaml"))
        for name, trace in traces
    ]


def decision_ms(queued: int, decisions: int, seed: int = 7) -> dict[str, Any]:
    """Median ms of one decision (one free slot) with ``queued`` jobs waiting, per policy; and of autoscale."""
    fleet = load_fleet(EXAMPLES / "fleets" / "mixed.yaml")
    jobs = jobs_from_records(gen_trace(queued + decisions * 4, seed))
    now = max(j.t for j in jobs)
    out: dict[str, Any] = {"queued": queued}
    t0 = time.perf_counter()
    queue = JobQueue(jobs)
    out["push_us_per_job"] = round((time.perf_counter() - t0) / len(jobs) * 1e6, 2)
    for policy in ("fifo", "reelfoundry"):
        queue = JobQueue(jobs[:queued])
        extra = iter(jobs[queued:])
        samples, placed = [], 0
        for i in range(decisions):
            free = fleet.slots[i % len(fleet.slots)].name
            busy = {s.name: now + 1 for s in fleet.slots if s.name != free}
            t0 = time.perf_counter()
            if policy == "fifo":
                result = fifo(queue, fleet, now, busy_until=busy)
                for p in result:
                    queue.remove(p.jobs[0].id)
            else:
                result = schedule(queue, fleet, now, busy_until=busy, batch_wait_s=BATCH_WAIT_S)
            samples.append(time.perf_counter() - t0)
            n = sum(len(p.jobs) for p in result)
            placed += n
            for _ in range(n):  # keep the queue at its size
                job = next(extra, None)
                if job is not None:
                    queue.push(job)
        out[f"{policy}_ms_per_decision"] = round(statistics.median(samples) * 1e3, 3)
        out[f"{policy}_jobs_per_decision"] = round(placed / decisions, 2)
        out[f"{policy}_queued_at_end"] = len(queue)
    held = {u.name: 0.0 for u in fleet.units[: len(fleet.units) // 2]}
    busy = {s: now + 100 for u in fleet.units[: len(fleet.units) // 2] for s in u.slots}
    queue = JobQueue(jobs[:queued])
    samples = []
    for _ in range(decisions):
        t0 = time.perf_counter()
        autoscale(queue, fleet, now, held=held, busy_until=busy)
        samples.append(time.perf_counter() - t0)
    out["autoscale_ms_per_decision"] = round(statistics.median(samples) * 1e3, 3)
    return out


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def main() -> None:
    """Print the comparison, the verdicts and the decision times (a table, or JSON lines with --json)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 11, 23])
    parser.add_argument("--queued", type=int, default=10_000)
    parser.add_argument("--decisions", type=int, default=200)
    parser.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    parser.add_argument(
        "--autoscale",
        type=json.loads,
        default=None,
        help='override every fleet\'s autoscale settings, e.g. \'{"startup_s": 120, "idle_timeout_s": 120}\'',
    )
    args = parser.parse_args()
    settings = parse_autoscale(args.autoscale, "--autoscale") if args.autoscale is not None else None
    rows = compare(args.jobs, args.seeds, settings)
    latency = decision_ms(args.queued, args.decisions)
    if args.json:
        for r in rows:
            print(json.dumps(r))
        print(json.dumps({"decision_latency": latency}))
        return
    print(
        "| fleet | trace | cost/video (static) | interactive p95 | utilisation fifo → static → ours "
        "(GPU, by cost) | deadline misses fifo → ours | held devices | targets | goal |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        u = r["utilization"]
        missed = [k for k, ok in r["targets_met"].items() if not ok]
        print(
            f"| {r['fleet']} | {r['trace']} | {_fmt(r['cost_per_video_ratio'])} "
            f"({_fmt(r['cost_per_video_ratio_static'])}) | {_fmt(r['p95_interactive_ratio'])} | "
            f"{u['fifo']:.3f} → {u['static']:.3f} → {u['ours']:.3f} "
            f"({_fmt(r['gpu_utilization_ours'])}, {r['utilization_by_cost_ours']:.3f}) | "
            f"{r['deadline_misses']['fifo']} → {r['deadline_misses']['ours']} | "
            f"{r['mean_held_devices']['ours']:.2f} of {r['mean_held_devices']['fleet']} | "
            f"{'all met' if not missed else 'missed: ' + ', '.join(missed)} | {'met' if r['goal_met'] else 'not met'} |"
        )
    for name in TARGETS | {"deadline_misses": None}:
        met = sum(r["targets_met"][name] for r in rows)
        print(f"target {name}: met on {met} of {len(rows)}")
    print(
        f"goal (<= {GOAL['cost']}x cost at >= {GOAL['utilization']:.0%} utilisation): "
        f"met on {sum(r['goal_met'] for r in rows)} of {len(rows)}"
    )
    print(
        f"decision with {latency['queued']} queued: reelfoundry {latency['reelfoundry_ms_per_decision']} ms "
        f"({latency['reelfoundry_jobs_per_decision']} jobs a decision), fifo {latency['fifo_ms_per_decision']} ms, "
        f"autoscale {latency['autoscale_ms_per_decision']} ms; target <= 1 ms per job"
    )


if __name__ == "__main__":
    main()
