"""Dynamic batching, live: 16 compatible built-in-model jobs through a real server, batched and one at a time.

Bar (issue 15): the 16 jobs finish with ≥ 2.5× the throughput of one-at-a-time (goal 4×), and their clips
are the same as the unbatched ones for the same seeds (within float tolerance).

Each run starts ``reelfoundry serve`` on a free 127.0.0.1 port with a temporary data dir and one worker
slot, lets one warm-up job load the model (not timed: both runs pay it once), then submits the jobs at once
(one thread each; fixed seeds, the same model, size, frames and steps, eight prompts) and times from the
first submission to the last ``succeeded``. Batching is on or off (``REELFOUNDRY_BATCHING``); rounds
alternate the order (on/off, off/on, …) so that load from elsewhere on a shared machine falls on both.
Besides wall time it counts the CPU seconds of the server's process tree (server and worker), which other
load on the machine does not inflate.

Clips: every clip of a batched run is decoded and compared, frame by frame, with the clip of the same seed
from an unbatched run. Float tolerance is checked where it applies, on the frames the model makes: in this
process the same 16 seeds are generated as one batch (``generate_batch``, the server's code path) and one at
a time (``generate``), and their 8-bit frames must differ by at most one level. The MP4s of the two server
runs then differ only where those frames do, by what H.264 makes of a one-level change; that is compared
with the encoder's own error on the same clips (decoded unbatched MP4 vs the frames it encoded).

    python benchmarks/batching.py [--jobs 16] [--steps 20] [--rounds 2]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import tempfile
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
from _harness import serve

from reelfoundry.hostinfo import describe

PROMPTS = [
    f"a {colour} {shape} moving {motion}"
    for colour, shape, motion in [
        ("red", "circle", "left"),
        ("blue", "square", "right"),
        ("green", "triangle", "up"),
        ("yellow", "star", "down"),
        ("purple", "circle", "right"),
        ("orange", "square", "left"),
        ("white", "triangle", "down"),
        ("cyan", "star", "up"),
    ]
]
#: The model's 8-bit frames, batched vs one at a time: float rounding may move a value by one level.
RAW_TOL = 1


def _cpu_seconds_of_children() -> float:
    """CPU seconds (user + system) used so far by every live process descended from this one (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    parent: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(entry.name)] = int(fields[1])
        cpu[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    me, total = os.getpid(), 0.0
    for pid in cpu:
        p = pid
        while p in parent and p != me:
            p = parent[p]
        if p == me and pid != me:
            total += cpu[pid]
    return total


def _submit(client: httpx.Client, seed: int, steps: int) -> str:
    body = {"prompt": PROMPTS[seed % len(PROMPTS)], "model": "builtin", "seed": seed, "steps": steps}
    r = client.post("/v1/jobs", json=body)
    r.raise_for_status()
    return str(r.json()["id"])


def _wait(client: httpx.Client, job_ids: list[str], timeout_s: float) -> dict[str, dict[str, Any]]:
    """Poll until every job has ended; their final records."""
    done: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout_s
    while len(done) < len(job_ids):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(job_ids) - len(done)} jobs not done after {timeout_s:.0f} s")
        for job_id in job_ids:
            if job_id in done:
                continue
            job = client.get(f"/v1/jobs/{job_id}").json()
            if job["state"] in ("succeeded", "failed", "cancelled"):
                if job["state"] != "succeeded":
                    raise RuntimeError(f"job {job_id} ended {job['state']}: {job.get('error')}")
                done[job_id] = job
        time.sleep(0.05)
    return done


def _frames(client: httpx.Client, asset_id: str) -> np.ndarray:
    r = client.get(f"/v1/assets/{asset_id}/content")
    r.raise_for_status()
    with av.open(io.BytesIO(r.content), "r") as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def run(batching: bool, jobs: int, steps: int) -> dict[str, Any]:
    """One server run: wall and CPU seconds for the jobs, the decoded clip per seed, load averages."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        serve(
            Path(tmp) / "data",
            worker_slots="1",
            batching="true" if batching else "false",
            rate_limit_submit="",
            rate_limit_read="",
        ) as (url, key),
    ):
        client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60)
        warm = time.perf_counter()
        _wait(client, [_submit(client, 10_000, steps)], 900)
        warm_s = time.perf_counter() - warm
        seeds = list(range(1, jobs + 1))
        ids: dict[int, str] = {}
        lock = threading.Lock()

        def submit(seed: int) -> None:
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as own:
                job_id = _submit(own, seed, steps)
            with lock:
                ids[seed] = job_id

        threads = [threading.Thread(target=submit, args=(s,)) for s in seeds]
        load_before = os.getloadavg()[0]
        cpu_before = _cpu_seconds_of_children()
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        done = _wait(client, list(ids.values()), 3600)
        wall = time.perf_counter() - start
        cpu = _cpu_seconds_of_children() - cpu_before
        load_after = os.getloadavg()[0]
        clips = {seed: _frames(client, done[ids[seed]]["asset_id"]) for seed in seeds}
        cost = [done[ids[s]].get("cost") or {} for s in seeds]
        # Jobs claimed together (one unit: a batch, or a job alone) share their start time.
        units = len({done[ids[s]]["started_at"] for s in seeds})
        client.close()
    device_s = [float(c["device_seconds"]) for c in cost if "device_seconds" in c]
    return {
        "batching": batching,
        "wall_s": wall,
        "cpu_s": cpu,
        "warm_up_s": warm_s,
        "clips": clips,
        "device_s": statistics.fmean(device_s) if device_s else float("nan"),
        "load": (load_before, load_after),
        "units": units,
    }


def raw_frames(jobs: int, steps: int) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """The model's frames for the benchmark's seeds: (one batch, one at a time), in this process."""
    from reelfoundry.models.builtin import builtin_card
    from reelfoundry.portfolio.backends.diffusers import DiffusersBackend
    from reelfoundry.portfolio.base import GenerationParams

    card = builtin_card()
    assert card is not None, "no built-in weights installed"
    backend = DiffusersBackend(card)
    params = [
        GenerationParams(
            prompt=PROMPTS[seed % len(PROMPTS)],
            num_frames=card.default_num_frames,
            fps=card.default_fps,
            width=card.default_width,
            height=card.default_height,
            seed=seed,
            steps=steps,
            guidance_scale=card.default_guidance_scale,
        )
        for seed in range(1, jobs + 1)
    ]
    batched = {p.seed: np.asarray(o.frames) for p, o in zip(params, backend.generate_batch(params), strict=True)}
    single = {p.seed: np.asarray(backend.generate(p).frames) for p in params}
    return batched, single


def _diff(a: np.ndarray, b: np.ndarray) -> tuple[int, float]:
    if a.shape != b.shape:
        raise SystemExit(f"clip shapes differ: {a.shape} vs {b.shape}")
    d = np.abs(a.astype(int) - b.astype(int))
    return int(d.max()), float(d.mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2, help="on/off pairs, alternating which goes first")
    args = parser.parse_args()
    print(f"{date.today()}  {describe()}  ({args.jobs} jobs, {args.steps} steps, 1 worker slot)")
    runs: list[dict[str, Any]] = []
    for r in range(args.rounds):
        for batching in (True, False) if r % 2 == 0 else (False, True):
            run_ = run(batching, args.jobs, args.steps)
            runs.append(run_)
            print(
                f"round {r + 1} batching {'on ' if batching else 'off'}: wall {run_['wall_s']:7.2f} s  "
                f"cpu {run_['cpu_s']:7.2f} s  device s/job {run_['device_s']:5.2f}  warm-up {run_['warm_up_s']:5.1f} s"
                f"  units {run_['units']:2d}  load {run_['load'][0]:.1f}->{run_['load'][1]:.1f}",
                flush=True,
            )
    on = [x for x in runs if x["batching"]]
    off = [x for x in runs if not x["batching"]]
    wall_ratio = statistics.median(x["wall_s"] for x in off) / statistics.median(x["wall_s"] for x in on)
    cpu_ratio = statistics.median(x["cpu_s"] for x in off) / statistics.median(x["cpu_s"] for x in on)
    per_round = [o["wall_s"] / b["wall_s"] for b, o in zip(on, off, strict=True)]
    print(
        f"throughput batched / one-at-a-time: wall {wall_ratio:.2f}x (per round "
        f"{', '.join(f'{x:.2f}' for x in per_round)}), CPU {cpu_ratio:.2f}x  (bar >= 2.5x, goal 4x)"
    )

    # Clips: the model's frames in this process (float tolerance), then the two server runs' MP4s.
    raw_batched, raw_single = raw_frames(args.jobs, args.steps)
    raw_max = max(_diff(raw_batched[s], raw_single[s])[0] for s in raw_single)
    raw_same = sum(int(np.array_equal(raw_batched[s], raw_single[s])) for s in raw_single)
    print(
        f"model frames, batch vs one at a time (this process): {raw_same}/{len(raw_single)} identical, "
        f"worst max |diff| {raw_max} level(s) (tolerance {RAW_TOL})"
    )
    mp4 = [_diff(on[0]["clips"][s], off[0]["clips"][s]) for s in raw_single]
    codec = [_diff(off[0]["clips"][s], raw_single[s]) for s in raw_single]
    identical = sum(int(np.array_equal(on[0]["clips"][s], off[0]["clips"][s])) for s in raw_single)
    mp4_mean, codec_mean = max(m for _, m in mp4), statistics.fmean(m for _, m in codec)
    print(
        f"server clips, batched vs unbatched run: {identical}/{len(mp4)} identical; worst max |diff| "
        f"{max(x for x, _ in mp4)}, worst mean |diff| {mp4_mean:.3f} levels; H.264's own error on these clips "
        f"(decoded vs encoded frames): mean {codec_mean:.3f}, max {max(x for x, _ in codec)}"
    )
    same = raw_max <= RAW_TOL and mp4_mean <= codec_mean
    print(f"clips the same as unbatched within float tolerance: {'yes' if same else 'NO'}")
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
