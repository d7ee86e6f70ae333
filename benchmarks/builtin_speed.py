"""Built-in model speed: first clip including model load, then clips with the model loaded.

Bars (issue 3): a 16×64×64 clip at default settings in ≤ 3 s with the model loaded; the
first clip including load in ≤ 15 s. Baseline in the same run: the template renderer
making a clip of the same size, through the same produce() path.

    python benchmarks/builtin_speed.py [--runs 5] [--weights DIR]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from reelfoundry.execution.produce import produce
from reelfoundry.models.builtin import WEIGHTS_DIR, builtin_card
from reelfoundry.portfolio.backends.diffusers import DiffusersBackend
from reelfoundry.portfolio.backends.template import TemplateBackend
from reelfoundry.portfolio.base import GenerationParams


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--weights", type=Path, default=WEIGHTS_DIR)
    args = parser.parse_args()
    card = builtin_card(args.weights)
    if card is None:
        raise SystemExit(f"no trained built-in model at {args.weights}")
    prompt = "a red circle moving left on a blue background"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)

        def params(i: int) -> GenerationParams:
            return GenerationParams(
                prompt=prompt,
                num_frames=16,
                fps=8,
                width=64,
                height=64,
                seed=i,
                steps=card.default_steps,
                guidance_scale=card.default_guidance_scale,
            )

        t0 = time.perf_counter()
        backend = DiffusersBackend(card)
        produce(backend, params(0), out / "first.mp4")
        first = time.perf_counter() - t0
        loaded = []
        for i in range(args.runs):
            t0 = time.perf_counter()
            produce(backend, params(i + 1), out / f"{i}.mp4")
            loaded.append(time.perf_counter() - t0)
        template = TemplateBackend()
        base = []
        for i in range(args.runs):
            t0 = time.perf_counter()
            produce(template, params(i), out / f"t{i}.mp4")
            base.append(time.perf_counter() - t0)
    m, b = statistics.median(loaded), statistics.median(base)
    print(f"first clip incl. load : {first:.2f} s  (bar ≤ 15 s)")
    print(f"clip, model loaded    : median {m:.2f} s over {args.runs}  (bar ≤ 3 s; {card.default_steps} steps, CFG)")
    print(f"template, same size   : median {b:.3f} s")
    print(f"built-in / template   : {m / b:.1f}x")


if __name__ == "__main__":
    main()
