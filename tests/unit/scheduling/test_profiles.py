"""Model profiles come from model cards: the shipped portfolio, the template and built-in cards, --models FILE."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reelfoundry.cli.app import app
from reelfoundry.errors import InvalidParameter
from reelfoundry.scheduling import (
    Fleet,
    ModelProfile,
    default_profiles,
    load_fleet,
    load_profiles,
    parse_trace,
    simulate,
)
from reelfoundry.scheduling.profiles import FALLBACK_PROFILES, SHIPPED_MODELS_FILE, load_models, parse_models
from reelfoundry.schema import ModelCard

FLEETS = Path(__file__).parents[3] / "examples" / "fleets"
runner = CliRunner()

CARD = {
    "id": "tiny",
    "name": "Tiny",
    "backend": "diffusers",
    "default_num_frames": 16,
    "default_fps": 8,
    "default_width": 64,
    "default_height": 64,
    "max_num_frames": 16,
    "max_width": 64,
    "max_height": 64,
}


def card(**fields: object) -> ModelCard:
    return ModelCard.model_validate({**CARD, **fields})


def test_a_profile_is_what_the_card_states() -> None:
    [(ltx, where)] = [c for c in load_models(SHIPPED_MODELS_FILE) if c[0].id == "ltx-video"]
    assert "models.yaml: line" in where
    p = ModelProfile.from_card(ltx)
    assert (p.weights_gib, p.act_gib_per_mpf, p.max_batch, p.batch_marginal) == (20.0, 0.25, 4, 0.35)
    assert set(p.speeds) == {"L40S", "A100-40GB", "A100-80GB", "H100", "H200", "B200"}  # no cpu: not in devices
    assert not p.runs_on("cpu")
    work = 40 * 121 * 768 * 512 / 1e6
    assert p.runtime_s(1, 121, 768, 512, 40, "H100") == pytest.approx(3.0 + work * 0.02)
    assert p.runtime_s(3, 121, 768, 512, 40, "A100-80GB") == pytest.approx(3.0 + work * 0.0625 * (1 + 2 * 0.35))
    assert p.memory_gib(2, 121, 768, 512) == pytest.approx(20 + 2 * 0.25 * 121 * 768 * 512 / 1e6)
    assert p.speed["H100"] == 1.0 and p.speed["A100-80GB"] == pytest.approx(0.32)
    assert p.source == "card"


def test_a_listed_device_without_a_figure_is_derived_and_says_so() -> None:
    p = ModelProfile.from_card(
        card(
            resources={"weights_gib": 1, "devices": ["H100", "A100-80GB"], "max_batch": 2},
            speed={"H100": {"s_per_step_mpf": 0.1, "overhead_s": 2}, "B200": {"s_per_step_mpf": 0.05}},
        )
    )
    assert set(p.speeds) == {"H100", "A100-80GB"}  # B200 is not among its devices
    assert p.speeds["A100-80GB"].s_per_step_mpf == pytest.approx(0.1 / 0.32)
    assert "derived" in p.speeds["A100-80GB"].source and p.speeds["H100"].source == "assumed"


def test_what_a_card_leaves_out_falls_back_only_where_there_is_a_fallback() -> None:
    bare = card()
    with pytest.raises(InvalidParameter) as err:
        ModelProfile.from_card(bare)
    assert err.value.parameter == "speed" and "'tiny'" in err.value.detail
    builtin = ModelProfile.from_card(card(id="builtin"), FALLBACK_PROFILES["builtin"])
    assert builtin.max_batch == 16 and builtin.runs_on("cpu")
    assert builtin.source == "card; scheduler fallback for resources and speed"
    # a card's own figures win over the fallback
    own = ModelProfile.from_card(
        card(id="builtin", speed={"cpu": {"s_per_step_mpf": 2.0, "overhead_s": 1}}), FALLBACK_PROFILES["builtin"]
    )
    assert set(own.speeds) == set(FALLBACK_PROFILES["builtin"].speeds)  # devices from the fallback resources
    assert own.speeds["cpu"].s_per_step_mpf == 2.0
    vendor = card(hosting={"vendor": "fal", "region": "us"}, price_usd_per_video_second="0.1")
    with pytest.raises(InvalidParameter) as err:
        ModelProfile.from_card(vendor)
    assert err.value.parameter == "hosting"


def test_default_profiles_are_the_shipped_cards() -> None:
    profiles = default_profiles()
    assert {"template", "builtin", "ltx-video", "wan-1.3b", "hunyuan-video"} <= set(profiles)
    assert profiles["hunyuan-video"].runs_on("A100-80GB") and not profiles["hunyuan-video"].runs_on("L40S")
    template = profiles["template"]
    assert template.max_batch == 1
    assert len({s.s_per_step_mpf for s in template.speeds.values()}) == 1  # CPU-bound: the same everywhere


MODELS = textwrap.dedent(
    """\
    models:
      - id: tiny
        name: Tiny
        backend: diffusers
        default_num_frames: 16
        default_fps: 8
        default_width: 64
        default_height: 64
        max_num_frames: 16
        max_width: 64
        max_height: 64
        resources: {weights_gib: 1, activation_gib_per_mpf: 0.1, devices: [H100], max_batch: 8}
        speed:
          H100: {s_per_step_mpf: 0.01, overhead_s: 1}
    """
)
SECOND = textwrap.indent(MODELS.split("\n", 1)[1].replace("tiny", "other"), "")


@pytest.mark.parametrize(
    ("text", "line", "field"),
    [
        (MODELS + SECOND.replace("weights_gib: 1,", "weights_gib: -1,"), 15, "resources.weights_gib"),
        (MODELS + SECOND.replace("      H100: {s_per_step_mpf: 0.01, overhead_s: 1}\n", ""), 15, "speed"),
        (MODELS + SECOND.replace("H100: {", "TPU: {"), 15, "speed"),
        (MODELS + SECOND.replace("id: other", "id: tiny"), 15, "id"),
        (MODELS.replace("    name: Tiny\n", ""), 2, "name"),
        ("models: {}\n", 1, "models"),
    ],
)
def test_models_file_errors_name_the_line_and_field(tmp_path: Path, text: str, line: int, field: str) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(InvalidParameter) as err:
        load_profiles(path)
    assert err.value.parameter == field
    assert f"{path}: line {line}" in err.value.detail
    assert f"'{field}'" in err.value.detail


def test_models_file_replaces_the_shipped_portfolio(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(MODELS)
    profiles = load_profiles(path)
    assert set(profiles) == {"template", "builtin", "tiny"}
    record = {"t": 0, "tenant": "a", "priority": "batch", "num_frames": 16, "width": 64, "height": 64, "steps": 20}
    trace = json.dumps(record | {"model": "tiny"}) + "\n" + json.dumps(record | {"model": "ltx-video"}) + "\n"
    with pytest.raises(InvalidParameter) as err:
        parse_trace(trace, "t.jsonl", profiles)
    assert err.value.parameter == "model" and "t.jsonl: line 2" in err.value.detail
    jobs = parse_trace(trace.splitlines()[0], "t.jsonl", profiles)
    assert simulate(jobs, load_fleet_h100(), "reelfoundry", profiles=profiles)["jobs_completed"] == 1
    assert parse_models(MODELS, "x")[0][1] == "x: line 2 (models[0])"


def load_fleet_h100() -> Fleet:
    return load_fleet(FLEETS / "h100.yaml")


def test_cli_models_option(tmp_path: Path) -> None:
    models = tmp_path / "m.yaml"
    models.write_text(MODELS)
    trace = tmp_path / "t.jsonl"
    record = {"t": 0, "tenant": "a", "priority": "batch", "num_frames": 16, "width": 64, "height": 64, "steps": 20}
    trace.write_text(json.dumps(record | {"model": "tiny"}) + "\n")
    args = ["simulate", "--fleet", str(FLEETS / "h100.yaml"), "--trace", str(trace), "--json"]
    r = runner.invoke(app, [*args, "--models", str(models)])
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["jobs_completed"] == 1 and "held_device_s" in report and "gpu_utilization" in report
    # without the file, the shipped portfolio has no such model: the trace's line and field are named
    r = runner.invoke(app, args)
    assert r.exit_code == 2 and "line 1" in r.output and "'model'" in r.output
    models.write_text(MODELS.replace("max_batch: 8", "max_batch: 0"))
    r = runner.invoke(app, [*args, "--models", str(models)])
    assert r.exit_code == 2
    assert f"{models}: line 2 (models[0]): field 'resources.max_batch'" in r.output
    r = runner.invoke(app, [*args, "--static", "--policy", "fifo"])
    assert r.exit_code == 2
