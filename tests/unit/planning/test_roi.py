"""planning.roi: hand-computed efficiency, performance lift and strategic value; measured campaigns; the
blueprint's retail case; invalid inputs named by field."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from reelfoundry.errors import InvalidParameter
from reelfoundry.finops.catalog import VideoApiPrice, load_catalog
from reelfoundry.planning import roi
from reelfoundry.planning.scenario import load_scenario, parse_scenario
from reelfoundry.store.outcomes import OutcomeTotals

RETAILER = Path(__file__).parents[3] / "examples" / "scenarios" / "retailer.yaml"

FACTS = """\
volume_per_month: 100
seconds_per_video: 20
growth_per_year: 0
latency_target_s: 600
data_classes: [public]
gpu_ops_experience: none
fine_tuning: none
horizon_years: 1
"""


def _scenario(roi_yaml: str) -> Any:
    return parse_scenario(FACTS + "roi:\n" + roi_yaml, "test.yaml")


def _values(figures: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {k: v["value"] for k, v in figures.items()}


def test_efficiency_by_hand_with_the_scenarios_ai_cost() -> None:
    s = _scenario(
        "  ai_cost_per_video_usd: 4\n"
        "  efficiency: {baseline_hours_per_video: 10, ai_hours_per_video: 2, hourly_rate_usd: 50,"
        " baseline_cost_per_video_usd: 300}\n"
    )
    figs = roi.compute(s).to_json()["efficiency"]["figures"]
    v = _values(figs)
    assert v["cost_per_video_without_ai_usd"] == 800  # 10 h × $50 + $300
    assert v["cost_per_video_with_ai_usd"] == 104  # 2 h × $50 + $4
    assert v["saved_per_video_usd"] == 696  # 800 − 104
    assert v["saved_share"] == 0.87  # 696 / 800
    assert v["hours_saved_per_video"] == 8 and v["hours_saved_per_month"] == 800  # (10 − 2) × 100 videos
    assert v["saved_per_month_usd"] == 69_600  # 696 × 100
    assert v["videos_over_horizon"] == 1200 and v["saved_horizon_usd"] == 835_200  # 12 months × 100, no growth
    assert figs["ai_cost_per_video_usd"]["provenance"] == "scenario"
    assert figs["saved_per_video_usd"]["provenance"] == "derived" and figs["saved_per_video_usd"]["formula"]


def test_efficiency_takes_the_cheapest_video_api_row_from_the_catalog() -> None:
    def row(provider: str, usd: str) -> VideoApiPrice:
        return VideoApiPrice(
            provider=provider, model="m", usd_per_second=Decimal(usd), source=f"https://{provider}", as_of="2026-01"
        )

    catalog = load_catalog().model_copy(update={"video_api": [row("dear", "0.30"), row("cheap", "0.12")]})
    s = _scenario("  efficiency: {baseline_hours_per_video: 1, hourly_rate_usd: 10}\n")
    result = roi.compute(s, catalog=catalog).to_json()["efficiency"]
    ai = result["figures"]["ai_cost_per_video_usd"]
    # $0.12/s × 20 s = $2.40; without AI 1 h × $10 = $10, with AI $2.40: $7.60 saved per video.
    assert ai["value"] == 2.4 and ai["provenance"] == "catalog"
    assert ai["source"] == "https://cheap" and ai["as_of"] == "2026-01"
    assert result["figures"]["saved_per_video_usd"]["value"] == 7.6
    assert result["video_api"]["provider"] == "cheap"


PERFORMANCE = """\
  baseline: {label: print, spend_usd: 2000, views: 40000, clicks: 800, conversions: 40, revenue_usd: 4000}
  ai: {label: generated, spend_usd: 500, views: 50000, clicks: 1500, conversions: 90, revenue_usd: 6300}
"""


def test_performance_lift_by_hand() -> None:
    perf = roi.compute(_scenario(PERFORMANCE)).to_json()["performance"]
    base, ai, change = _values(perf["baseline"]["figures"]), _values(perf["ai"]["figures"]), _values(perf["changes"])
    # baseline: $2000 / 40,000 views = $0.05 a view; / 800 clicks = $2.50; / 40 conversions = $50;
    # CTR 800 / 40,000 = 2 %; conversion 40 / 40,000 = 0.1 %; ROAS 4000 / 2000 = 2.
    assert (base["cost_per_view_usd"], base["cost_per_click_usd"], base["cost_per_conversion_usd"]) == (0.05, 2.5, 50)
    assert (base["click_through_rate"], base["conversion_rate"], base["roas"]) == (0.02, 0.001, 2)
    # ai: $500 / 50,000 = $0.01; / 1500 = $0.333333; / 90 = $5.555556; CTR 3 %; conversion 0.18 %; ROAS 12.6.
    assert (ai["cost_per_view_usd"], ai["cost_per_click_usd"], ai["cost_per_conversion_usd"]) == (
        0.01,
        0.333333,
        5.555556,
    )
    assert (ai["click_through_rate"], ai["conversion_rate"], ai["roas"]) == (0.03, 0.0018, 12.6)
    # changes: 0.01 / 0.05 − 1 = −0.8; (1/3) / 2.5 − 1 = −0.866667; (50/9) / 50 − 1 = −0.888889;
    # 0.03 / 0.02 − 1 = +0.5; 0.0018 / 0.001 − 1 = +0.8; 12.6 / 2 − 1 = +5.3; views +25 %; revenue +57.5 %.
    assert change["cost_per_view_change"] == -0.8
    assert change["cost_per_click_change"] == -0.866667
    assert change["cost_per_conversion_change"] == -0.888889
    assert change["click_through_rate_change"] == 0.5 and change["conversion_rate_change"] == 0.8
    assert change["roas_change"] == 5.3 and change["views_change"] == 0.25 and change["revenue_change"] == 0.575
    assert all(f["provenance"] == "derived" for f in perf["changes"].values())


def test_a_named_campaign_is_measured_and_a_stated_figure_wins() -> None:
    baseline = PERFORMANCE.splitlines()[0]
    s = _scenario(baseline + "\n  ai: {campaign: spring-drop, spend_usd: 500}\n")
    measured = {"spring-drop": OutcomeTotals(3, 20_000, 400, 30, Decimal("900.0000"), Decimal("123.0000"))}
    data = roi.compute(s, measured=measured).to_json()
    figs = data["performance"]["ai"]["figures"]
    assert figs["views"]["value"] == 20_000 and figs["views"]["provenance"] == "measured"
    assert "3 outcome(s)" in figs["views"]["source"]
    assert figs["spend_usd"]["value"] == 500 and figs["spend_usd"]["provenance"] == "scenario"  # not 123
    assert figs["cost_per_view_usd"]["value"] == 0.025  # $500 / 20,000
    assert data["measured"]["spring-drop"]["views"] == 20_000
    # Nothing posted yet: the scenario's figures alone, and a note that says so.
    empty = roi.compute(s, measured={}).to_json()["performance"]["ai"]
    assert "no outcomes posted for campaign 'spring-drop'" in empty["note"]
    assert empty["figures"]["views"]["value"] is None and empty["figures"]["cost_per_view_usd"]["value"] is None


def test_the_blueprints_retail_case_reproduces_its_figures() -> None:
    data = roi.compute(load_scenario(RETAILER)).to_json()
    base, ai = data["performance"]["baseline"]["figures"], data["performance"]["ai"]["figures"]
    assert base["spend_usd"]["value"] == 1500  # the $1,500 influencer campaign
    assert ai["views"]["value"] == 100_000 and ai["views"]["provenance"] == "scenario"
    assert ai["conversion_rate"]["value"] == 0.015
    assert ai["conversions"]["value"] == 1500 and ai["conversions"]["provenance"] == "derived"  # 1.5 % of 100,000
    # $1500 / 10,000 = $0.15 against $1500 / 100,000 = $0.015: 90 % less per view.
    assert (base["cost_per_view_usd"]["value"], ai["cost_per_view_usd"]["value"]) == (0.15, 0.015)
    assert data["performance"]["changes"]["cost_per_view_change"]["value"] == -0.9
    # Efficiency: catalog's cheapest API $0.05/s × 15 s = $0.75; 12 h × $55 + $250 = $910 without AI,
    # 1 h × $55 + $0.75 = $55.75 with it: $854.25 saved a video, × 400 a month = $341,700.
    eff = _values(data["efficiency"]["figures"])
    assert data["efficiency"]["figures"]["ai_cost_per_video_usd"]["provenance"] == "catalog"
    assert (eff["ai_cost_per_video_usd"], eff["saved_per_video_usd"], eff["saved_per_month_usd"]) == (
        0.75,
        854.25,
        341_700,
    )
    # Strategic: (4×2 + 5×2 + 3×1 + 4×1) / 6 = 25/6; no money put on it.
    strat = data["strategic"]
    assert strat["score"]["value"] == 4.166667 and strat["value_usd_per_year"]["value"] is None
    assert all(f["provenance"] == "scenario" and f["why"] for f in strat["factors"])


def test_strategic_money_only_where_the_scenario_gives_it() -> None:
    s = _scenario(
        "  strategic:\n"
        "    - {factor: a, score: 5, weight: 3, value_usd_per_year: 1000}\n"
        "    - {factor: b, score: 1, weight: 1}\n"
    )
    strat = roi.compute(s).to_json()["strategic"]
    assert strat["score"]["value"] == 4  # (5×3 + 1×1) / 4
    assert strat["value_usd_per_year"] == {
        "value": 1000.0,
        "unit": "usd/year",
        "provenance": "derived",
        "formula": "sum of the factors' value_usd_per_year (scenario)",
    }


def test_invalid_roi_inputs_name_the_field() -> None:
    with pytest.raises(InvalidParameter) as bad:
        _scenario("  ai: {views: 100, conversion_rate: 1.5}\n")
    assert bad.value.parameter == "roi.ai.conversion_rate" and "line 10" in bad.value.detail  # the ai: line
    with pytest.raises(InvalidParameter) as contradicting:
        roi.compute(_scenario("  ai: {views: 100000, conversions: 1500, conversion_rate: 0.02}\n"))
    assert contradicting.value.parameter == "roi.ai.conversion_rate"
    assert "1500 ÷ 100000 = 0.015" in contradicting.value.detail
    with pytest.raises(InvalidParameter) as unknown:
        _scenario("  baseline: {spend: 5}\n")
    assert unknown.value.parameter == "roi.baseline.spend"
    with pytest.raises(InvalidParameter) as missing:
        roi.compute(parse_scenario(FACTS))
    assert missing.value.parameter == "roi"
