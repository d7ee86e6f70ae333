"""The GIM: sensible rankings for the stated cases, scores redone by hand, explanations tied to the facts."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from reelfoundry.planning.gim import DRIVERS, OPTIONS, CostFact, evaluate, rank
from reelfoundry.planning.scenario import Scenario, load_scenario, parse_scenario

EXAMPLES = Path(__file__).parents[3] / "examples" / "scenarios"

SMALL_TEAM = """\
name: small team
volume_per_month: 150
seconds_per_video: 10
growth_per_year: 0.2
latency_target_s: 600
data_classes: [public]
gpu_ops_experience: none
fine_tuning: none
horizon_years: 1
"""

#: Fixed costs, so a fact's effect on the rated drivers is seen alone.
COSTS = {o: CostFact(1000.0 * (i + 1), "test", o) for i, o in enumerate(OPTIONS)}


def changed(s: Scenario, **change: Any) -> Scenario:
    return Scenario.model_validate({**s.model_dump(), **change})


def scores(s: Scenario) -> dict[str, dict[str, float]]:
    return {o.option: {d: o.drivers[d].score for d in DRIVERS} for o in rank(s, COSTS).ranking}


def test_the_bank_gets_a_private_cloud_for_the_blueprints_reasons() -> None:
    result = evaluate(load_scenario(EXAMPLES / "investment_bank.yaml"))
    by = {o.option: o for o in result.ranking}
    assert result.top.option in {"specialised_cloud_vpc", "hybrid"}
    # "On-Premise scored highest on Security but failed on management complexity."
    assert by["on_premise"].drivers["security"].score == max(o.drivers["security"].score for o in result.ranking)
    assert any("management complexity" in n for n in by["on_premise"].notes)
    assert by["on_premise"].drivers["volume"].facts["gpu_ops_experience"] == "none"
    # "A public cloud API failed the Security axis."
    assert by["public_cloud_api"].drivers["security"].score == 0
    assert result.ranking[-1].option == "public_cloud_api"
    assert any("public_cloud_api falls short on security" in r for r in result.reasons())


def test_a_small_public_data_team_buys_an_api() -> None:
    assert evaluate(parse_scenario(SMALL_TEAM)).top.option == "public_cloud_api"
    assert evaluate(load_scenario(EXAMPLES / "retailer.yaml")).top.option == "public_cloud_api"


def test_a_heavy_studio_builds_on_premise() -> None:
    result = evaluate(load_scenario(EXAMPLES / "studio.yaml"))
    assert result.top.option == "on_premise"
    assert result.reasons()  # it says why


def test_a_score_redone_by_hand() -> None:
    s = load_scenario(EXAMPLES / "investment_bank.yaml")
    result = rank(s, COSTS)
    on_prem = next(o for o in result.ranking if o.option == "on_premise")
    # latency need: log10(3600 / 90) / log10(3600 / 10) = 1.60206 / 2.55630 = 0.62671
    assert result.needs["latency_need"] == pytest.approx(0.62671, abs=1e-4)
    # on-premise latency: 10 − 0.62671 × (10 − 9.5 × 0.4 ops for gpu_ops none) = 10 − 0.62671 × 6.2 = 6.1144
    assert on_prem.drivers["latency"].score == pytest.approx(6.1144, abs=1e-3)
    # peak month 35: 20000 × 1.5^(35/12) = 65,157 videos × 30 s = 32,578 min; level log10(325.78) / 4 = 0.62842
    assert result.needs["volume_level"] == pytest.approx(0.62842, abs=1e-4)
    # volume: (2 + 8 × 0.62842) × 0.4 = 2.8109
    assert on_prem.drivers["volume"].score == pytest.approx(2.8109, abs=1e-3)
    # security: restricted → need 1 → the capability, 10; fine-tuning light → 10 − 0.5 × 0 = 10
    assert on_prem.drivers["security"].score == 10 and on_prem.drivers["fine_tuning"].score == 10
    # cost: cheapest 1000 (on_premise itself in COSTS) → 10
    assert on_prem.drivers["cost"].score == 10
    # weights 1, 2, 3, 1, 1 of 8
    expected = (2.8109 * 1 + 6.1144 * 2 + 10 * 3 + 10 * 1 + 10 * 1) / 8
    assert on_prem.score == pytest.approx(expected, abs=1e-3)
    api = next(o for o in result.ranking if o.option == "public_cloud_api")
    assert api.drivers["cost"].score == pytest.approx(10 * 1000 / 2000)  # cheapest ÷ this


@pytest.mark.parametrize(
    ("change", "driver", "fact"),
    [
        ({"data_classes": ["restricted"]}, "security", "data_classes"),
        ({"latency_target_s": 15}, "latency", "latency_target_s"),
        ({"fine_tuning": "heavy"}, "fine_tuning", "fine_tuning"),
        ({"volume_per_month": 200_000}, "volume", "volume_per_month"),
        ({"growth_per_year": 20.0}, "volume", "growth_per_year"),
    ],
)
def test_changing_a_fact_changes_the_driver_that_names_it(change: dict[str, Any], driver: str, fact: str) -> None:
    base = parse_scenario(SMALL_TEAM)
    other = changed(base, **change)
    before, after = scores(base), scores(other)
    moved = {d for o in OPTIONS for d in DRIVERS if not math.isclose(before[o][d], after[o][d])}
    assert moved == {driver}
    result = rank(other, COSTS)
    assert all(fact in o.drivers[driver].facts for o in result.ranking)


def test_gpu_skills_move_the_self_run_options_volume_and_latency() -> None:
    base = parse_scenario(SMALL_TEAM.replace("latency_target_s: 600", "latency_target_s: 30"))
    skilled = changed(base, gpu_ops_experience="strong")
    before, after = scores(base), scores(skilled)
    for option in ("on_premise", "specialised_cloud_vpc", "hybrid"):
        assert after[option]["volume"] > before[option]["volume"]
        assert after[option]["latency"] > before[option]["latency"]
    assert after["public_cloud_api"] == before["public_cloud_api"]


def test_weights_change_the_ranking() -> None:
    bank = load_scenario(EXAMPLES / "investment_bank.yaml")
    cost_only = changed(bank, weights={"volume": 0, "latency": 0, "security": 0, "cost": 1, "fine_tuning": 0})
    assert rank(cost_only, COSTS).top.option == "on_premise"  # the cheapest in COSTS
    assert rank(cost_only, COSTS).top.score == pytest.approx(10)


def test_json_names_every_option_with_its_drivers() -> None:
    data = rank(load_scenario(EXAMPLES / "studio.yaml"), COSTS).to_json()
    assert [o["option"] for o in data["ranking"]] and {o["option"] for o in data["ranking"]} == set(OPTIONS)
    for option in data["ranking"]:
        assert set(option["drivers"]) == set(DRIVERS)
        for d in option["drivers"].values():
            assert d["formula"] and "score" in d and "facts" in d
    scores_ = [o["score"] for o in data["ranking"]]
    assert scores_ == sorted(scores_, reverse=True)
    assert data["recommendation"]["option"] == data["ranking"][0]["option"]
