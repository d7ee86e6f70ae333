"""TCO and E-TCO: hand-computed totals, per-video figures, energy, carbon and break-even on round numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from reelfoundry.errors import InvalidParameter
from reelfoundry.planning import tco
from reelfoundry.planning.scenario import load_scenario, parse_scenario

EXAMPLES = Path(__file__).parents[3] / "examples" / "scenarios"

# 1,000 videos × 10 s × 36 GPU-s per video second = 360,000 GPU-s = 100 busy GPU-hours a month, no growth,
# one year; at 50 % utilisation one GPU (730 h × 0.5 = 365 h) carries it. Only AWS is offered as a cloud.
ROUND = """\
volume_per_month: 1000
seconds_per_video: 10
growth_per_year: 0
latency_target_s: 600
data_classes: [internal]
gpu_ops_experience: some
fine_tuning: none
horizon_years: 1
prices:
  gpu_seconds_per_video_second: 36
  utilisation: 0.5
  gpu_capex_usd: 48000
  amortisation_years: 4
  electricity_usd_per_kwh: 0.10
  pue: 1.5
  staff_fte: 0.1
  staff_usd_per_year: 120000
  space_usd_per_gpu_month: 100
  idle_power_share: 0.25
  carbon_region: FR
  storage_months: 0
  egress_gb_per_video: 0
  vpc_premium: 0.1
  api_usd_per_second: 0.1
  cloud_providers: [aws]
"""


@pytest.fixture(scope="module")
def result() -> dict:  # type: ignore[type-arg]
    return tco.compute(parse_scenario(ROUND)).to_json()


def _option(data: dict, option_id: str) -> dict:  # type: ignore[type-arg]
    return next(o for o in data["options"] if o["id"] == option_id)


def test_on_premise_by_hand(result: dict) -> None:  # type: ignore[type-arg]
    # A month: capex 48,000 / (4 × 12) = 1,000; space 100; staff 0.1 × 120,000 / 12 = 1,000.
    # Power: H100 700 W (catalog) × 100 busy h = 70 kWh + 630 idle h × 0.7 kW × 0.25 = 110.25 kWh → 180.25 kWh;
    # power $ = 180.25 × 0.10 = 18.025; cooling $ = 180.25 × (1.5 − 1) × 0.10 = 9.0125.
    # Month = 2,127.0375; year = 25,524.45; per video = 25,524.45 / 12,000 = 2.127.
    # Energy = 180.25 × 1.5 × 12 = 3,244.5 kWh; CO2e at FR 56 g/kWh = 181.692 kg.
    o = _option(result, "on_premise")
    assert o["fleet_gpus"] == 1
    assert o["total_usd"] == pytest.approx(25524.45, abs=0.01)
    assert o["capex_usd"] == pytest.approx(12000.0, abs=0.01)
    assert o["opex_usd"] == pytest.approx(13524.45, abs=0.01)
    assert o["per_video_usd"] == pytest.approx(2.127)
    assert o["monthly_usd"] == pytest.approx(2127.04, abs=0.01)
    assert o["energy_kwh"] == pytest.approx(3244.5, abs=0.001)
    assert o["co2e_kg"] == pytest.approx(181.692, abs=0.001)
    assert o["energy_kwh_per_video"] == pytest.approx(0.2704)  # 3,244.5 / 12,000 = 0.270375
    assert o["training_usd"] == 0 and o["inference_usd"] == o["total_usd"]


def test_cloud_on_demand_by_hand(result: dict) -> None:  # type: ignore[type-arg]
    # AWS H100 on-demand $6.88/h (catalog); instances kept up = 100 busy h / 0.5 = 200 h → $1,376 a month,
    # $16,512 a year, $1.376 a video (no VPC premium at a hyperscaler; storage and egress are 0 here).
    # Energy: 100 h × 0.7 kW + 100 idle h × 0.7 × 0.25 = 87.5 kWh × PUE 1.135 = 99.3125 kWh a month
    # → 1,191.75 kWh; aws:us-east-1 at 379.069 g/kWh → 451.755 kg.
    o = _option(result, "hyperscaler_cloud:aws:on-demand")
    assert o["total_usd"] == pytest.approx(16512.0, abs=0.01)
    assert o["per_video_usd"] == pytest.approx(1.376)
    assert o["energy_kwh"] == pytest.approx(1191.75, abs=0.001)
    assert o["co2e_kg"] == pytest.approx(451.755, abs=0.001)
    assert o["capex_usd"] == 0 and o["deployment"] == "hyperscaler_cloud"
    assert any(s.get("kind") == "catalog" and s.get("as_of") for s in o["sources"])


def test_api_by_hand(result: dict) -> None:  # type: ignore[type-arg]
    # $0.10/s × 10 s × 1,000 videos = $1,000 a month, $12,000 a year, $1.00 a video.
    # Energy (assumption): 100 GPU-h × 0.7 kW × PUE 1.135 = 79.45 kWh a month → 953.4 kWh; world 481 g → 458.585 kg.
    apis = [o for o in result["options"] if o["deployment"] == "public_cloud_api"]
    assert len(apis) == 1  # prices.api_usd_per_second replaces the catalog's APIs
    o = apis[0]
    assert o["total_usd"] == pytest.approx(12000.0, abs=0.01)
    assert o["per_video_usd"] == pytest.approx(1.0)
    assert o["energy_kwh"] == pytest.approx(953.4, abs=0.001)
    assert o["co2e_kg"] == pytest.approx(458.585, abs=0.001)


def test_break_even_by_hand(result: dict) -> None:  # type: ignore[type-arg]
    # Fixed per GPU wall-clock hour: 48,000 / (4 × 8,760) = 1.369863 + 100 / 730 = 0.136986
    #   + 12,000 / 8,760 = 1.369863 + idle 0.7 × 0.25 × 1.5 × 0.10 = 0.02625 → F = 2.902962.
    # Variable per busy hour: 0.7 × 0.75 × 1.5 × 0.10 = 0.07875. Cheapest on-demand: AWS $6.88.
    # u* = 2.902962 / (6.88 − 0.07875) = 0.42683.
    util = result["break_even"]["utilisation"]
    assert util["utilisation"] == pytest.approx(0.4268)
    assert util["fixed_usd_per_gpu_hour"] == pytest.approx(2.90296, abs=1e-5)
    assert "u* = F / (C − V)" in util["formula"]
    # On-premise a month at V videos (one GPU up to 3,650): 2,100 + power and cooling
    #   (127.75 + 0.0525 V) kWh × 0.15 = 2,119.1625 + 0.007875 V.
    # API: 1.00 V → V = 2,119.1625 / 0.992125 = 2,135.97 → 2,136 videos a month.
    # AWS on-demand: 1.376 V → V = 2,119.1625 / 1.368125 = 1,548.93 → 1,549 (the capacity block is $3,588.68).
    volume = result["break_even"]["volume"]
    assert volume["vs_cheapest_api"] == 2136
    assert volume["vs_cheapest_cloud"] == 1549


def test_growth_compounds_monthly() -> None:
    text = ROUND.replace("growth_per_year: 0", "growth_per_year: 0.2").replace("horizon_years: 1", "horizon_years: 2")
    data = tco.compute(parse_scenario(text)).to_json()
    by_month = data["volume"]["videos_by_month"]
    assert len(by_month) == 24 and by_month[0] == 1000 and by_month[12] == pytest.approx(1200)  # ×(1 + 0.2)
    assert by_month[6] == pytest.approx(1000 * 1.2**0.5, abs=0.01)


def test_bank_options_split_training_and_inference_and_carry_etco() -> None:
    result = tco.compute(load_scenario(EXAMPLES / "investment_bank.yaml"))
    data = result.to_json()
    deployments = {o["deployment"] for o in data["options"]}
    assert deployments >= {
        "on_premise",
        "public_cloud_api",
        "specialised_cloud_vpc",
        "hyperscaler_cloud",
        "hybrid",
    }
    totals = [o["total_usd"] for o in data["options"]]
    assert totals == sorted(totals)
    for o in data["options"]:
        assert o["training_usd"] + o["inference_usd"] == pytest.approx(o["total_usd"], abs=1e-6)
        assert o["capex_usd"] + o["opex_usd"] == pytest.approx(o["total_usd"], abs=1e-6)
        assert o["training_usd"] > 0  # fine_tuning: light → 50 GPU-hours a month, priced in every option
        assert o["energy_kwh"] > 0 and o["co2e_kg"] > 0 and o["sources"]
    assert {e["id"] for e in data["etco"]} == {o["id"] for o in data["options"]}
    best = tco.best_by_deployment(result)
    assert best["hybrid"].id == "hybrid" and float(best["on_premise"].total_usd) > 0
    kinds = {a["kind"] for a in data["assumptions"]}
    assert kinds == {"assumption", "catalog"}


def test_invalid_price_override_names_the_field() -> None:
    with pytest.raises(InvalidParameter) as err:
        parse_scenario(ROUND.replace("utilisation: 0.5", "utilisation: 2"))
    assert err.value.parameter == "prices.utilisation" and "line 11" in err.value.detail


def test_unknown_device_names_prices_device() -> None:
    with pytest.raises(InvalidParameter) as err:
        tco.compute(parse_scenario(ROUND.replace("  utilisation: 0.5", "  utilisation: 0.5\n  device: TPU9")))
    assert err.value.parameter == "prices.device"


def test_measured_figures_replace_volume_and_add_this_platform() -> None:
    rows = [
        {"day": "2026-11-01", "jobs": 3, "succeeded": 2, "video_seconds": 12.0, "total_usd": "1.30",
         "energy_kwh": "0.03", "co2e_kg": "0.015"},
        {"day": "2026-11-10", "jobs": 1, "succeeded": 1, "video_seconds": 6.0, "total_usd": "0.50",
         "energy_kwh": "0.01", "co2e_kg": "0.005"},
    ]  # fmt: skip
    measured = tco.Measured.from_usage_rows(rows)
    assert measured is not None
    # 3 videos over 10 days → 9 a month; 18 s / 3 = 6 s; $1.80 / 3 = $0.60 a video.
    data = tco.compute(parse_scenario(ROUND), measured=measured).to_json()
    assert data["volume"]["kind"] == "measured" and data["volume"]["first_month"] == 9
    assert data["volume"]["seconds_per_video"] == 6
    mine = _option(data, "this_platform_measured")
    assert mine["total_usd"] == pytest.approx(64.8, abs=0.01)  # 0.60 × 9 × 12
    assert mine["per_video_usd"] == pytest.approx(0.6)
    assert mine["energy_kwh"] == pytest.approx(1.44, abs=0.001)  # 0.04 / 3 × 108
    assert mine["sources"][0]["kind"] == "measured"
    assert tco.Measured.from_usage_rows([]) is None


def test_runaway_growth_is_refused_naming_the_field() -> None:
    text = ROUND.replace("growth_per_year: 0", "growth_per_year: 100").replace("horizon_years: 1", "horizon_years: 15")
    with pytest.raises(InvalidParameter) as err:
        tco.compute(parse_scenario(text))  # 1,000 × 101^15 videos a month by the end
    assert err.value.parameter == "growth_per_year"
