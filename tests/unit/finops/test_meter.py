"""Hand-computed prices: each pricing model, a MIG share, idle attribution, energy and carbon, storage, egress."""

from __future__ import annotations

from decimal import Decimal

import pytest

from reelfoundry.config import Settings
from reelfoundry.errors import InvalidParameter
from reelfoundry.finops.catalog import load_catalog
from reelfoundry.finops.meter import IdleLedger, Rates, Usage, parse_share, price
from reelfoundry.finops.rates import gpu_class, worker_rates

D = Decimal


def rates(**over: object) -> Rates:
    base: dict[str, object] = dict(
        catalog_version="t",
        provider="aws",
        region="us-east-1",
        pricing_model="on-demand",
        device="H100",
        device_share=D(1),
        usd_per_device_hour=D("6.88"),
        tdp_w=D(700),
        pue=D("1.135"),
        carbon_region="aws:us-east-1",
        g_co2e_per_kwh=D("379.069"),
        storage_usd_per_gb_month=D("0.023"),
        retention_days=D("30.436875"),  # exactly one month
        egress_usd_per_gb=D("0.09"),
    )
    base.update(over)
    return Rates(**base)  # type: ignore[arg-type]


def test_one_hour_of_a_whole_h100_on_demand() -> None:
    # 3600 s × $6.88/h = $6.88; 700 W for an hour = 0.7 kWh at the device, × PUE 1.135 = 0.7945 kWh;
    # × 379.069 g/kWh = 301.1703205 g = 0.301170320 kg (9 places, half-even); 2 GB a month × $0.023 = $0.046.
    cost = price(Usage(device_seconds=3600, energy_j=700 * 3600, stored_bytes=2 * 10**9), rates())
    assert cost.compute_usd == D("6.88")
    assert cost.energy_kwh == D("0.7945")
    assert cost.co2e_kg == D("0.301170320")
    assert cost.storage_usd == D("0.046")
    assert cost.idle_usd == 0 and cost.egress_usd == 0
    assert cost.total_usd == D("6.926")


@pytest.mark.parametrize(
    ("provider", "device", "model", "region", "per_hour"),
    [
        ("aws", "H100", "on-demand", "us-east-1", "6.88"),
        ("aws", "H200", "spot", "us-east-1", "3.3998"),
        ("aws", "H100", "capacity-block", "us-east-1", "4.916"),
        ("coreweave", "H100", "reserved", "us", "2.4620"),
        ("lambda", "A100-80GB", "on-demand", "us", "2.79"),
        ("local", "cpu", "on-demand", "local", "0.08925"),
    ],
)
def test_each_pricing_model_prices_from_its_catalog_row(
    provider: str, device: str, model: str, region: str, per_hour: str
) -> None:
    settings = Settings(
        worker_provider=provider, worker_device=device, worker_pricing_model=model, worker_region=region
    )
    r = worker_rates(settings, load_catalog())
    assert r.usd_per_device_hour == D(per_hour) and r.pricing_model == model
    # 90 s is 1/40 of an hour.
    assert price(Usage(device_seconds=90), r).compute_usd == (D(per_hour) / 40).quantize(D("1e-10"))


def test_a_mig_slice_pays_its_share_of_the_gpu_and_its_energy() -> None:
    share = parse_share("1g.10gb")  # 1/7, kept to 9 places as the record stores it
    assert share == D("0.142857143") and parse_share("3g.40gb") == D("0.428571429") and parse_share("0.5") == D("0.5")
    r = rates(device_share=share)
    # 700 s × $6.88/h × 0.142857143 = $0.19111111129… → $0.1911111113 (≈ 100 s of the whole GPU)
    assert price(Usage(device_seconds=700), r).compute_usd == D("0.1911111113")
    for bad in ("0", "1.5", "8g.80gb", "half"):
        with pytest.raises(InvalidParameter):
            parse_share(bad)


def test_idle_time_is_charged_to_the_next_job_at_the_same_rate() -> None:
    now = [0.0]
    ledger = IdleLedger(slots=2, clock=lambda: now[0])
    ledger.tick(busy=0)
    now[0] = 10.0
    ledger.tick(busy=1)  # 10 s with both slots idle: 20 slot-seconds
    now[0] = 30.0
    first = ledger.take(busy=1)  # + 20 s with one idle slot: 20 more
    assert first == 40.0 and ledger.pending == 0.0
    ledger.tick(busy=2)  # the claimed job runs: both slots busy from now
    now[0] = 31.0
    assert ledger.take(busy=2) == 0.0  # nothing idle since
    cost = price(Usage(device_seconds=60, idle_seconds=first), rates(usd_per_device_hour=D("3.60")))
    # $3.60/h = $0.001/s: 60 s work = $0.06, 40 s idle = $0.04; total = workload + idle.
    assert (cost.compute_usd, cost.idle_usd, cost.total_usd) == (D("0.06"), D("0.04"), D("0.10"))


def test_egress_and_a_job_that_never_ran() -> None:
    assert price(Usage(), rates(), egress_bytes=5 * 10**8).egress_usd == D("0.045")
    nothing = price(Usage(device_seconds=99), None)
    assert nothing.total_usd == 0 and nothing.energy_kwh == 0


def test_worker_slots_share_one_device_unless_a_share_is_set() -> None:
    two = worker_rates(Settings(worker_slots=2), load_catalog(), device="cpu")
    assert two.device_share == D("0.5")
    mig = worker_rates(
        Settings(worker_slots=7, worker_device="H100", worker_provider="aws", worker_device_share="1g.10gb"),
        load_catalog(),
    )
    assert mig.device_share == D("0.142857143")


def test_rates_round_trip_through_json_and_defaults_follow_the_provider() -> None:
    r = worker_rates(Settings(worker_provider="aws", worker_device="H200", worker_pricing_model="spot"), load_catalog())
    assert Rates.from_json(r.to_json()) == r
    assert r.carbon_region == "aws:us-east-1" and r.pue == D("1.135") and r.egress_usd_per_gb == D("0.09")
    local = worker_rates(Settings(), load_catalog(), device="cpu")
    assert (local.pue, local.carbon_region, local.egress_usd_per_gb) == (D(1), "world", D(0))
    own = worker_rates(Settings(worker_device="H100", worker_usd_per_device_hour=D("1.25")), load_catalog())
    assert own.usd_per_device_hour == D("1.25") and own.tdp_w == D(700)


def test_settings_that_name_no_price_say_what_exists() -> None:
    with pytest.raises(InvalidParameter, match="has no 'spot' price; it has"):
        worker_rates(
            Settings(worker_provider="lambda", worker_device="H100", worker_pricing_model="spot"), load_catalog()
        )
    with pytest.raises(InvalidParameter, match="no price for aws/cpu-9000"):
        worker_rates(Settings(worker_provider="aws", worker_device="cpu-9000"), load_catalog())


def test_gpu_names_map_to_device_classes() -> None:
    assert gpu_class("NVIDIA H100 80GB HBM3") == "H100"
    assert gpu_class("NVIDIA H100 PCIe") == "H100-PCIe"
    assert gpu_class("NVIDIA A100-SXM4-80GB") == "A100-80GB"
    assert gpu_class("NVIDIA A100-SXM4-40GB") == "A100-40GB"
    assert gpu_class("NVIDIA H200") == "H200" and gpu_class("Tesla T4") is None
