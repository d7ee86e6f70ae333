"""The NRES suite: fixed prompts and seeds, weight-free metrics, the score's formula, and a real run (template)."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from reelfoundry.cli.app import app
from reelfoundry.config import Settings
from reelfoundry.evaluation.features import extract, fit_clip, flicker, load_extractor, temporal_consistency
from reelfoundry.evaluation.nres import (
    SUITE_SEED,
    SUITE_VERSION,
    NresRun,
    evaluate_model,
    fidelity_score,
    nres_score,
    suite_params,
    suite_prompts,
)
from reelfoundry.evaluation.protocol import frechet_distance
from reelfoundry.portfolio.backends.template import TEMPLATE_CARD
from reelfoundry.schema import ModelCard

runner = CliRunner()


@pytest.fixture(scope="module")
def template_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[NresRun, NresRun]:
    """The quick suite run twice on the template model (deterministic, seconds on a CPU)."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("data"))
    return evaluate_model(TEMPLATE_CARD, settings), evaluate_model(TEMPLATE_CARD, settings)


def test_the_suite_is_fixed_for_a_seed() -> None:
    quick = suite_prompts("quick")
    assert quick == suite_prompts("quick", SUITE_SEED)
    assert len(quick) == 8 and len({p.text for p in quick}) == 8
    assert [p.seed for p in quick] == [SUITE_SEED * 1000 + i for i in range(8)]
    assert quick[0].text == "a yellow circle moving up on a red background"
    other = suite_prompts("quick", seed=7)
    assert [p.text for p in other] != [p.text for p in quick]
    standard = suite_prompts("standard")
    assert len(standard) == 48 and standard[:8] == quick  # the quick suite is the standard one's start
    np.testing.assert_array_equal(quick[3].reference(SUITE_SEED), quick[3].reference(SUITE_SEED))


def test_suite_params_fit_each_card() -> None:
    quick = suite_prompts("quick")
    template = suite_params(TEMPLATE_CARD, "quick", quick)
    assert {(p.num_frames, p.width, p.height, p.fps) for p in template} == {(16, 64, 64, 8)}
    assert [p.seed for p in template] == [p.seed for p in quick]
    # A card whose frame rule excludes 16 gets the nearest count it allows; one too small for 64 px its default.
    ltx_like = TEMPLATE_CARD.model_copy(update={"id": "odd", "frame_multiple": 8, "frame_offset": 1})
    assert suite_params(ltx_like, "quick", quick)[0].num_frames == 17
    small_size = {"max_width": 32, "max_height": 32, "default_width": 32, "default_height": 24}
    small = ModelCard.model_validate({**TEMPLATE_CARD.model_dump(mode="json"), "id": "small", **small_size})
    first = suite_params(small, "quick", quick)[0]
    assert (first.width, first.height) == (32, 32)
    standard = suite_params(TEMPLATE_CARD, "standard", suite_prompts("standard"))
    assert (standard[0].num_frames, standard[0].width, standard[0].height) == (120, 640, 360)


def test_the_score_follows_the_stated_formula() -> None:
    assert fidelity_score(0.0, 500.0) == 1.0
    assert fidelity_score(500.0, 500.0) == pytest.approx(1 / math.e)
    # time × cost equal to t0 × c0 halves the fidelity; negligible time × cost leaves it whole
    assert nres_score(0.8, 1.0, Decimal("0.01"), 1.0, Decimal("0.01")) == pytest.approx(0.4)
    assert nres_score(0.8, 2.0, Decimal("0.03"), 1.0, Decimal("0.01")) == pytest.approx(0.8 / 7)
    assert nres_score(0.8, 0.0, Decimal(0), 1.0, Decimal("0.01")) == 0.8


def test_weight_free_temporal_metrics() -> None:
    still = np.full((8, 16, 16, 3), 90, np.uint8)
    assert temporal_consistency(still) == 1.0 and flicker(still) == 0.0
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (8, 16, 16, 3), dtype=np.uint8)
    assert abs(temporal_consistency(noise)) < 0.2
    blink = np.stack([np.full((16, 16, 3), 255 * (i % 2), np.uint8) for i in range(8)])
    assert flicker(blink) == pytest.approx(2.0, abs=1e-3)
    fade = np.stack([np.full((16, 16, 3), 30 * i, np.uint8) for i in range(8)])
    assert flicker(fade) < 1e-3  # a steady fade is not flicker


def test_clips_are_fitted_to_the_probe_and_the_probe_tells_right_from_wrong() -> None:
    clip = np.zeros((33, 48, 80, 3), np.uint8)
    assert fit_clip(clip).shape == (16, 64, 64, 3)
    with pytest.raises(ValueError, match="frames, height, width, 3"):
        fit_clip(np.zeros((4, 8, 8), np.uint8))
    prompts = suite_prompts("quick")
    extractor, name = load_extractor(None)
    assert name.startswith("probe")
    reference = extract(extractor, [fit_clip(p.reference(SUITE_SEED)) for p in prompts])
    redrawn = extract(extractor, [fit_clip(p.reference(7)) for p in prompts])  # the same prompts, other jitter
    grey = extract(extractor, [np.full((16, 64, 64, 3), 128 + i, np.uint8) for i in range(8)])
    assert frechet_distance(redrawn, reference) < 0.5 * frechet_distance(grey, reference)


def test_a_run_is_deterministic_for_a_seed_and_complete(template_runs: tuple[NresRun, NresRun]) -> None:
    first, second = (run.result for run in template_runs)
    assert first.suite_version == SUITE_VERSION and first.suite == "quick"
    assert (first.clips, first.clips_failed, first.num_frames, first.width, first.height) == (8, 0, 16, 64, 64)
    # What depends only on the suite and the model is the same on every run; times and memory are measured.
    for name in ("fidelity", "frechet_distance", "temporal_consistency", "flicker", "reference"):
        assert getattr(first, name) == getattr(second, name), name
    assert first.frechet_distance is not None and first.frechet_distance > 100  # title cards are not shapes
    assert 0 < first.fidelity < 0.5
    assert first.fidelity == pytest.approx(math.exp(-first.frechet_distance / 500.0), rel=1e-4)
    assert first.peak_memory_mb > 50 and first.peak_memory_method == "rss-high-water"
    assert first.seconds_per_clip is not None and first.seconds_per_clip > 0
    assert first.cold_seconds_per_clip is not None and first.cold_seconds_per_clip >= first.seconds_per_clip
    cost = Decimal(first.cost_per_clip_usd or "0")
    assert cost > 0 and first.rates["device"] == "cpu"
    per_vs = Decimal(first.cost_per_video_second_usd or "0")
    expected = nres_score(first.fidelity, first.seconds_per_video_second or 0, per_vs, 1.0, Decimal("0.01"))
    assert first.nres == pytest.approx(expected, abs=1e-6) and first.nres <= first.fidelity
    assert first.network_attempts == [] and first.errors == []
    assert [p.seed for p in template_runs[0].params] == [p.seed for p in suite_prompts("quick")]


def test_eval_model_cli_prints_the_result_as_json(tmp_path: Path) -> None:
    args = ["eval", "model", "template", "--suite", "quick", "--json", "--data-dir", str(tmp_path)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {"fidelity", "seconds_per_clip", "peak_memory_mb", "cost_per_clip_usd", "nres", "suite_version"} <= set(data)
    assert data["model"] == "template" and data["suite_version"] == SUITE_VERSION and data["clips"] == 8


def test_eval_model_cli_refuses_what_it_cannot_run(tmp_path: Path) -> None:
    unknown = runner.invoke(app, ["eval", "model", "no-such-model", "--data-dir", str(tmp_path)])
    assert unknown.exit_code == 2 and "not found" in unknown.output
    suite = runner.invoke(app, ["eval", "model", "template", "--suite", "huge", "--data-dir", str(tmp_path)])
    assert suite.exit_code == 2
    record = runner.invoke(app, ["eval", "model", "template", "--record", "--data-dir", str(tmp_path / "none")])
    assert record.exit_code == 2 and "database" in record.output
    features = runner.invoke(
        app, ["eval", "model", "template", "--features", str(tmp_path / "nothing"), "--data-dir", str(tmp_path)]
    )
    assert features.exit_code == 2 and "neither a TorchScript file" in features.output
