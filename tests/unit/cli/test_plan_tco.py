"""``reelfoundry plan tco`` in-process: the --json shape, the table, --chart and --from-usage on a SQLite data dir."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reelfoundry.cli.app import app
from reelfoundry.ids import new_id
from reelfoundry.store import Database
from reelfoundry.store import keys as keystore
from reelfoundry.store.tables import CostRecordRow, JobRow

EXAMPLES = Path(__file__).parents[3] / "examples" / "scenarios"
BANK = str(EXAMPLES / "investment_bank.yaml")
#: The discard port: nothing answers, so the data dir is read directly (the key is never sent).
OFFLINE = ["--server", "http://127.0.0.1:9", "--api-key", "unused"]
SCENARIO = """\
volume_per_month: 1000
seconds_per_video: 10
growth_per_year: 0
latency_target_s: 600
data_classes: [public]
gpu_ops_experience: none
fine_tuning: none
horizon_years: 1
"""

runner = CliRunner()


def test_json_for_the_bank_holds_every_option_figure() -> None:
    result = runner.invoke(app, ["plan", "tco", BANK, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert len(data["options"]) > 10
    for option in data["options"]:
        for key in ("total_usd", "per_video_usd", "energy_kwh", "co2e_kg", "training_usd", "inference_usd"):
            assert isinstance(option[key], int | float) and not isinstance(option[key], bool), key
        assert option["deployment"] in {
            "on_premise",
            "public_cloud_api",
            "specialised_cloud_vpc",
            "hyperscaler_cloud",
            "hybrid",
        }
    assert {"utilisation", "volume"} <= set(data["break_even"]) and data["etco"]


def test_table_shows_break_even_and_split() -> None:
    result = runner.invoke(app, ["plan", "tco", BANK], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    assert "Break-even utilisation" in result.stdout and "Break-even volume" in result.stdout
    assert "training" in result.stdout and "inference" in result.stdout


def test_chart_writes_a_png(tmp_path: Path) -> None:
    out = tmp_path / "tco.png"
    result = runner.invoke(app, ["plan", "tco", BANK, "--chart", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(result.stdout)["options"]  # stdout stays JSON only
    assert [p.name for p in tmp_path.iterdir()] == ["tco.png"]  # no temporary file left behind


def test_bad_override_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(SCENARIO + "prices:\n  utilisation: 2\n")
    result = runner.invoke(app, ["plan", "tco", str(path)])
    assert result.exit_code == 2 and "prices.utilisation" in result.stderr


def _seed(data_dir: Path, records: bool) -> None:
    db = Database(f"sqlite:///{data_dir / 'reelfoundry.db'}")
    db.migrate()
    try:
        with db.write() as s:
            tenant = keystore.get_or_create_tenant(s, "acme").id
            # 3 delivered videos of 6 s (day 1 and day 10) and one failure: $1.80, 0.04 kWh, 0.02 kg in all.
            plan = [
                (1, "succeeded", "0.50"),
                (1, "succeeded", "0.50"),
                (1, "failed", "0.30"),
                (10, "succeeded", "0.50"),
            ]
            for day, state, usd in plan if records else []:
                at = datetime(2026, 11, day, 12, 0, tzinfo=UTC)
                job_id = new_id()
                s.add(JobRow(id=job_id, tenant_id=tenant, state=state, model="template", priority=0, request={},
                             request_hash="h", attempts=1, max_attempts=3, created_at=at, finished_at=at))  # fmt: skip
                s.flush()
                s.add(
                    CostRecordRow(id=new_id(), job_id=job_id, tenant_id=tenant, model="template", state=state,
                                  device="cpu", device_seconds=1.0, idle_seconds=0.0, energy_kwh=Decimal("0.01"),
                                  co2e_kg=Decimal("0.005"), stored_bytes=0,
                                  video_seconds=6.0 if state == "succeeded" else 0.0, egress_bytes=0,
                                  compute_usd=Decimal(usd), idle_usd=Decimal(0), storage_usd=Decimal(0),
                                  egress_usd=Decimal(0), total_usd=Decimal(usd), created_at=at)
                )  # fmt: skip
    finally:
        db.dispose()


def test_from_usage_measures_volume_and_prices_this_platform(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    _seed(data_dir, records=True)
    scenario = tmp_path / "s.yaml"
    scenario.write_text(SCENARIO)
    args = ["plan", "tco", str(scenario), "--from-usage", "--json", *OFFLINE, "--data-dir", str(data_dir)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    # 3 videos over the 10 days from the first record to the last → 9 a month; 18 video seconds / 3 = 6 s.
    assert data["volume"]["kind"] == "measured"
    assert data["volume"]["first_month"] == 9 and data["volume"]["seconds_per_video"] == 6
    assert data["measured"]["usd_per_video"] == pytest.approx(0.6)  # $1.80 / 3, the failure paid for
    mine = next(o for o in data["options"] if o["id"] == "this_platform_measured")
    assert mine["total_usd"] == pytest.approx(64.8, abs=0.01)  # 0.60 × 9 × 12 months
    assert mine["energy_kwh"] == pytest.approx(1.44, abs=0.001)  # 0.04 kWh / 3 × 108 videos
    assert mine["co2e_kg"] == pytest.approx(0.72, abs=0.001)  # 0.02 kg / 3 × 108


def test_from_usage_without_records_exits_2(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    _seed(data_dir, records=False)
    args = ["plan", "tco", BANK, "--from-usage", *OFFLINE, "--data-dir", str(data_dir)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "no cost records" in result.stderr


def test_gim_reads_the_measured_workload_too(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    _seed(data_dir, records=True)
    scenario = tmp_path / "s.yaml"
    scenario.write_text(SCENARIO.replace("volume_per_month: 1000", "volume_per_month: 900000"))
    args = ["plan", "gim", str(scenario), "--from-usage", "--json", *OFFLINE, "--data-dir", str(data_dir)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    needs = json.loads(result.stdout)["needs"]
    # 9 measured videos a month × 6 s (not the scenario's 900,000), no growth: 0.9 video-minutes
    assert needs["volume_source"] == "measured" and needs["peak_video_minutes_per_month"] == pytest.approx(0.9)
