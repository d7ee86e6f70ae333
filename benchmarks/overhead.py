"""Platform overhead: a template job through the server vs the backend called directly, same run.

Direct: produce() (render + encode + poster) in this process.
Server: POST /v1/jobs, follow its SSE stream to the final event (worker process,
database writes, storage, events included). Both render the default 5 s
640×360 24 fps title card; the medians of --runs are compared.

    python benchmarks/overhead.py [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from _harness import serve

from reelfoundry.execution.produce import produce
from reelfoundry.portfolio.backends.template import TemplateBackend
from reelfoundry.portfolio.base import GenerationParams


def direct(runs: int, tmp: Path) -> list[float]:
    backend = TemplateBackend()
    times = []
    for i in range(runs):
        params = GenerationParams(prompt=f"Overhead run {i}", num_frames=120, fps=24, width=640, height=360, seed=i)
        t0 = time.perf_counter()
        produce(backend, params, tmp / f"direct-{i}.mp4")
        times.append(time.perf_counter() - t0)
    return times


def through_server(runs: int, tmp: Path) -> list[float]:
    times = []
    with (
        serve(tmp / "data", poll_interval_s="0.2") as (url, key),
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as c,
    ):
        c.post("/v1/jobs", json={"prompt": "warm-up", "model": "template", "num_frames": 4})
        time.sleep(2)
        for i in range(runs):
            body = {"prompt": f"Overhead run {i}", "model": "template", "seed": i}
            t0 = time.perf_counter()
            job = c.post("/v1/jobs", json=body).json()
            with c.stream("GET", f"/v1/jobs/{job['id']}/events", timeout=httpx.Timeout(60, read=120)) as r:
                for line in r.iter_lines():
                    if line.startswith("event: job.") and line.split(".")[1] in ("succeeded", "failed", "cancelled"):
                        break
            times.append(time.perf_counter() - t0)
            assert c.get(f"/v1/jobs/{job['id']}").json()["state"] == "succeeded"
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = direct(args.runs, Path(tmp))
        s = through_server(args.runs, Path(tmp))
    md, ms = statistics.median(d), statistics.median(s)
    print(f"direct backend call : median {md:.3f} s  (runs: {', '.join(f'{x:.3f}' for x in d)})")
    print(f"through the server  : median {ms:.3f} s  (runs: {', '.join(f'{x:.3f}' for x in s)})")
    print(f"overhead ratio server / direct: {ms / md:.3f}x")


if __name__ == "__main__":
    main()
