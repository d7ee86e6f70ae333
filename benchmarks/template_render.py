"""Template backend speed: a 5 s 640×360 24 fps title card, render + encode, vs real time.

The baseline is the clip's own duration: a ratio below 1 means faster than real time.

    python benchmarks/template_render.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from reelfoundry.execution.produce import produce
from reelfoundry.portfolio.backends.template import TemplateBackend
from reelfoundry.portfolio.base import GenerationParams


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    backend = TemplateBackend()
    render, total = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            params = GenerationParams(
                prompt=f"Render benchmark {i}", num_frames=120, fps=24, width=640, height=360, seed=i
            )
            t0 = time.perf_counter()
            for _ in backend.generate(params).frames:
                pass
            render.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            produce(backend, params, Path(tmp) / f"{i}.mp4")
            total.append(time.perf_counter() - t0)
    clip = 120 / 24
    print(f"render only       : median {statistics.median(render):.3f} s")
    print(f"render + encode   : median {statistics.median(total):.3f} s  (clip length {clip:.1f} s)")
    print(f"time / clip length: {statistics.median(total) / clip:.3f}x real time")


if __name__ == "__main__":
    main()
