"""``reelfoundry plan roi`` in-process: --json is compute()'s JSON, the table shows the retail case, a bad roi
field is one line and exit code 2, and a named campaign is measured from a data dir's posted outcomes."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from reelfoundry.cli.app import app
from reelfoundry.planning import roi
from reelfoundry.planning.scenario import load_scenario
from reelfoundry.schema.outcome import OutcomeCreate
from reelfoundry.store import Database
from reelfoundry.store import keys as keystore
from reelfoundry.store import outcomes as outcomestore

RETAILER = Path(__file__).parents[3] / "examples" / "scenarios" / "retailer.yaml"
#: The discard port: nothing answers, so the data dir is read directly (the key is never sent).
OFFLINE = ["--server", "http://127.0.0.1:9", "--api-key", "unused"]
FACTS = """\
volume_per_month: 10
seconds_per_video: 10
latency_target_s: 600
data_classes: [public]
gpu_ops_experience: none
fine_tuning: none
horizon_years: 1
"""

runner = CliRunner()


def test_json_is_the_models_json_and_the_table_shows_the_retail_case() -> None:
    result = runner.invoke(app, ["plan", "roi", str(RETAILER), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == roi.compute(load_scenario(RETAILER)).to_json()
    table = runner.invoke(app, ["plan", "roi", str(RETAILER)], env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    for shown in ("100,000", "1,500", "1.50 %", "-90.0 %", "$1,500.00", "$854.25", "4.17/5", "catalog"):
        assert shown in table.stdout, shown


def test_a_bad_roi_field_is_one_line_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(FACTS + "roi:\n  ai: {views: 1000, conversion_rate: 1.5}\n")
    result = runner.invoke(app, ["plan", "roi", str(path)])
    assert result.exit_code == 2
    assert "roi.ai.conversion_rate" in result.output and len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_a_named_campaign_is_measured_from_the_data_dirs_outcomes(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    db = Database(f"sqlite:///{data_dir / 'reelfoundry.db'}")
    db.migrate()
    with db.write() as session:
        tenant = keystore.get_or_create_tenant(session, "acme")
        for views, spend, asset in ((60_000, "90", "01JD3K6Z0C8W4Q2M9V5T7RXYZA"), (40_000, "60", None)):
            body = OutcomeCreate(
                campaign="spring-drop", asset_id=asset, views=views, conversions=views // 100, spend_usd=spend
            )
            outcomestore.create(session, tenant.id, body, campaign="spring-drop", actor=None)
    db.dispose()
    path = tmp_path / "measured.yaml"
    path.write_text(FACTS + "roi:\n  baseline: {spend_usd: 1500, views: 10000}\n  ai: {campaign: spring-drop}\n")
    args = ["plan", "roi", str(path), "--json", *OFFLINE, "--data-dir", str(data_dir)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    ai = data["performance"]["ai"]["figures"]
    # 60,000 + 40,000 views, 600 + 400 conversions, $90 + $60: $150 / 100,000 = $0.0015 a view (−99 % vs $0.15).
    assert (ai["views"]["value"], ai["conversions"]["value"], ai["spend_usd"]["value"]) == (100_000, 1000, 150)
    assert {ai[k]["provenance"] for k in ("views", "conversions", "spend_usd")} == {"measured"}
    assert ai["cost_per_view_usd"]["value"] == 0.0015 and ai["conversion_rate"]["value"] == 0.01
    assert data["performance"]["changes"]["cost_per_view_change"]["value"] == -0.99
    assert data["measured"]["spring-drop"]["records"] == 2
    # One video of it: only the outcomes posted for that asset (the first: 60,000 views for $90).
    path.write_text(
        FACTS + "roi:\n  baseline: {spend_usd: 1500, views: 10000}\n  ai: {asset: 01JD3K6Z0C8W4Q2M9V5T7RXYZA}\n"
    )
    one = json.loads(runner.invoke(app, args).stdout)
    assert one["performance"]["ai"]["figures"]["views"]["value"] == 60_000
    assert "asset '01JD3K6Z0C8W4Q2M9V5T7RXYZA'" in one["performance"]["ai"]["figures"]["views"]["source"]
    assert one["measured"]["asset:01JD3K6Z0C8W4Q2M9V5T7RXYZA"]["spend_usd"] == "90.0000"
    # With neither a server nor a database: a note, and the scenario's figures alone.
    empty = runner.invoke(app, ["plan", "roi", str(path), "--json", *OFFLINE, "--data-dir", str(tmp_path / "none")])
    assert empty.exit_code == 0, empty.output
    assert "not measured" in empty.stderr
    assert json.loads(empty.stdout)["performance"]["ai"]["figures"]["views"]["value"] is None
