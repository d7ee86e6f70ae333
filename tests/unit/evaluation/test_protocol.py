"""The evaluation protocol's parts: the suite, the Fréchet distance, and scoring with the shipped probe."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from reelfoundry.evaluation.probe import load_probe
from reelfoundry.evaluation.protocol import evaluate, frechet_distance, suite
from reelfoundry.training.data import HELD_OUT, ClipSpec, render_clip

WEIGHTS = Path(__file__).parents[3] / "src" / "reelfoundry" / "evaluation" / "weights"
PROBE_TRAINED = (WEIGHTS / "probe.safetensors").exists()


def test_suite_covers_every_held_out_combination() -> None:
    prompts = suite()
    assert len(prompts) >= 200 and len({p.text for p in prompts}) > 190
    assert {(p.colour, p.shape, p.motion) for p in prompts if p.held_out} == set(HELD_OUT)
    assert suite() == prompts


def test_frechet_distance() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(500, 8)), rng.normal(size=(500, 8))
    assert frechet_distance(a, b) < 0.2
    assert frechet_distance(a, b + 2) > 30
    assert abs(frechet_distance(a, a)) < 1e-6


@pytest.mark.skipif(
    not PROBE_TRAINED,
    reason="the probe is not trained and shipped yet: reelfoundry train probe --out src/reelfoundry/evaluation/weights",
)
def test_perfect_generator_scores_like_the_probe() -> None:
    """A 'model' that renders exactly what each prompt asks must score about the probe's own accuracy."""
    probe = load_probe(WEIGHTS / "probe.safetensors")
    accuracy = json.loads((WEIGHTS / "probe.json").read_text())["heldout_accuracy"]
    prompts = [p for p in suite() if p.held_out][::3]
    by_text = {p.text: p for p in prompts}

    def generate(texts: list[str], seed: int) -> np.ndarray:
        clips = []
        for t in texts:
            p = by_text[t]
            background = "white" if p.colour != "white" else "black"
            start = 40.0 if p.motion != "moving right" else 20.0
            spec = ClipSpec(p.colour, p.shape, p.motion, background, 18.0, start, start, 28.0)
            if p.motion == "moving down":
                spec = ClipSpec(p.colour, p.shape, p.motion, background, 18.0, 32.0, 18.0, 28.0)
            if p.motion in ("growing", "shrinking"):
                spec = ClipSpec(
                    p.colour, p.shape, p.motion, background, 14.0 if p.motion == "growing" else 32.0, 32.0, 32.0, 0.0
                )
            clips.append(render_clip(spec))
        return np.stack(clips)

    report = evaluate(generate, probe, accuracy["all"], prompts=prompts)
    for name in ("colour", "shape", "motion"):
        assert report.adherence[name] >= accuracy[name] - 0.1, report
    assert report.fvd >= 0
