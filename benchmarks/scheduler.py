"""Scheduler: the reelfoundry policy against fifo on the shipped fleets, and decision latency.

For each shipped fleet and each seed, a 2000-job trace is generated and replayed with both
policies on the same virtual clock; the ratios (reelfoundry / fifo) are printed against the
targets: cost per video <= 0.75x, interactive p95 wait <= 0.5x, utilisation >= 85 %, deadline
misses no more than fifo. Then the time of one scheduling decision with 10,000 jobs queued
(one free slot per call, so each call is one decision), for both policies in the same run.

    python benchmarks/scheduler.py [--jobs 2000] [--seeds 7 11 23] [--decisions 200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from reelfoundry.scheduling import JobQueue, fifo, gen_trace, jobs_from_records, load_fleet, schedule, simulate

FLEETS = Path(__file__).parents[1] / "examples" / "fleets"


def compare(jobs: int, seeds: list[int]) -> list[dict[str, object]]:
    """Both policies on each fleet and seed; the metrics and the ratios."""
    rows: list[dict[str, object]] = []
    for path in sorted(FLEETS.glob("*.yaml")):
        fleet = load_fleet(path)
        for seed in seeds:
            trace = jobs_from_records(gen_trace(jobs, seed))
            base = simulate(trace, fleet, "fifo")
            ours = simulate(trace, fleet, "reelfoundry")
            rows.append(
                {
                    "fleet": path.stem,
                    "seed": seed,
                    "cost_per_video_ratio": round(ours["cost_per_video_usd"] / base["cost_per_video_usd"], 3),
                    "p95_interactive_ratio": round(
                        ours["p95_wait_s"]["interactive"] / max(base["p95_wait_s"]["interactive"], 1e-9), 3
                    ),
                    "p95_batch_ratio": round(ours["p95_wait_s"]["batch"] / max(base["p95_wait_s"]["batch"], 1e-9), 3),
                    "utilization": (base["utilization"], ours["utilization"]),
                    "utilization_by_cost": (base["utilization_by_cost"], ours["utilization_by_cost"]),
                    "deadline_misses": (base["deadline_misses"], ours["deadline_misses"]),
                    "cost_per_video_usd": (base["cost_per_video_usd"], ours["cost_per_video_usd"]),
                    "jobs_completed": (base["jobs_completed"], ours["jobs_completed"]),
                }
            )
    return rows


def decision_ms(queued: int, decisions: int, seed: int = 7) -> dict[str, float]:
    """Median ms of one decision (one free slot) with ``queued`` jobs waiting, per policy."""
    fleet = load_fleet(FLEETS / "mixed.yaml")
    jobs = jobs_from_records(gen_trace(queued + decisions * 4, seed))
    now = max(j.t for j in jobs)
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    queue = JobQueue(jobs)
    out["push_us_per_job"] = round((time.perf_counter() - t0) / len(jobs) * 1e6, 2)
    for policy in ("fifo", "reelfoundry"):
        queue = JobQueue(jobs)
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
                result = schedule(queue, fleet, now, busy_until=busy)
            samples.append(time.perf_counter() - t0)
            placed += sum(len(p.jobs) for p in result)
        out[f"{policy}_ms_per_decision"] = round(statistics.median(samples) * 1e3, 3)
        out[f"{policy}_jobs_placed"] = placed
        out[f"{policy}_queued_at_end"] = len(queue)
    out["ratio"] = round(out["reelfoundry_ms_per_decision"] / out["fifo_ms_per_decision"], 3)
    return out


def main() -> None:
    """Print the comparison and the latency as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 11, 23])
    parser.add_argument("--queued", type=int, default=10_000)
    parser.add_argument("--decisions", type=int, default=200)
    args = parser.parse_args()
    for row in compare(args.jobs, args.seeds):
        print(json.dumps(row))
    print(json.dumps({"decision_latency": decision_ms(args.queued, args.decisions)}))


if __name__ == "__main__":
    main()
