"""``reelfoundry models onboard``: the checks run here, the report is written (JSON + self-contained HTML) and
recorded, and a registered candidate is approved only when every check passes."""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import yaml
from typer.testing import CliRunner

from reelfoundry.cli.app import app
from reelfoundry.evaluation.onboarding import Check, OnboardingReport
from reelfoundry.evaluation.report import render_html
from reelfoundry.portfolio.backends.template import TEMPLATE_CARD
from reelfoundry.schema import ModelCard
from reelfoundry.store import Database
from reelfoundry.store import models as modelstore
from reelfoundry.store.tables import AuditPendingRow

runner = CliRunner()
PROMO = {
    **TEMPLATE_CARD.model_dump(mode="json", exclude={"speed", "quality", "resources", "status", "evaluation"}),
    "id": "promo",
    "name": "Promo renderer",
}


def platform_db(data_dir: Path, *cards: dict[str, object]) -> Database:
    """The data dir's database with these cards registered as candidates (as POST /v1/models leaves them)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(f"sqlite:///{data_dir / 'reelfoundry.db'}")
    db.migrate()
    with db.write() as session:
        for body in cards:
            modelstore.add_card(session, ModelCard.model_validate(body), None, status=modelstore.CANDIDATE)
    return db


def test_onboarding_a_passing_candidate_approves_it_and_writes_both_reports(tmp_path: Path) -> None:
    db = platform_db(tmp_path / "data", PROMO)
    card_file = tmp_path / "promo.yaml"
    card_file.write_text(yaml.safe_dump(PROMO))  # one card, not a models file
    html = tmp_path / "promo.html"
    args = ["models", "onboard", str(card_file), "--report", str(html), "--data-dir", str(tmp_path / "data")]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["passed"] is True and data["recorded"]["status"] == "approved"
    assert data["files"] == [str(html), str(tmp_path / "promo.json")]
    assert json.loads((tmp_path / "promo.json").read_text())["card_sha256"] == data["card_sha256"]
    page = html.read_text()
    assert "passed" in page and "canonical_format" in page and "data:image/jpeg;base64," in page
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", page) and "<script" not in page  # self-contained
    with db.read() as session:
        row = modelstore.get_card_row(session, "promo")
        assert row is not None and row.status == "approved" and row.approved_at is not None
        report = modelstore.latest_onboarding(session, "promo")
        assert report is not None and report.id == data["recorded"]["report_id"]
        actions = [a for (a,) in session.query(AuditPendingRow.action).filter(AuditPendingRow.subject == "promo")]
    assert actions == ["model.onboarded", "model.approved"]
    db.dispose()


def test_a_refused_card_stays_a_candidate_and_the_exit_code_says_so(tmp_path: Path) -> None:
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "model.bin").write_bytes(pickle.dumps([1, 2, 3]))
    body = {**PROMO, "options": {"path": str(weights)}}
    db = platform_db(tmp_path / "data", body)
    card_file = tmp_path / "models.yaml"
    card_file.write_text(yaml.safe_dump({"models": [body]}))
    result = runner.invoke(app, ["models", "onboard", str(card_file), "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 1
    assert "FAIL security/weights: model.bin is a pickle" in result.output and "status: candidate" in result.output
    with db.read() as session:
        row = modelstore.get_card_row(session, "promo")
        assert row is not None and row.status == "candidate"
        report = modelstore.latest_onboarding(session, "promo")
        assert report is not None and report.result["passed"] is False
    db.dispose()


def test_bad_card_files_are_refused_in_one_line(tmp_path: Path) -> None:
    two = tmp_path / "two.yaml"
    two.write_text(json.dumps({"models": [PROMO, {**PROMO, "id": "other"}]}))  # JSON is YAML, without aliases
    result = runner.invoke(app, ["models", "onboard", str(two), "--data-dir", str(tmp_path)])
    assert result.exit_code == 2 and "one card at a time, the file has 2" in result.output
    given = tmp_path / "given.yaml"
    given.write_text(yaml.safe_dump({**PROMO, "status": "approved"}))
    result = runner.invoke(app, ["models", "onboard", str(given), "--data-dir", str(tmp_path)])
    assert result.exit_code == 2 and "status is set by the platform" in result.output
    missing = runner.invoke(app, ["models", "onboard", str(tmp_path / "nope.yaml"), "--data-dir", str(tmp_path)])
    assert missing.exit_code == 2 and "cannot read" in missing.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**PROMO, "default_fps": 0}))
    result = runner.invoke(app, ["models", "onboard", str(bad), "--data-dir", str(tmp_path)])
    assert result.exit_code == 2 and "default_fps" in result.output


def test_the_html_report_escapes_what_the_card_and_the_model_said() -> None:
    report = OnboardingReport(
        model="m",
        model_version="<b>1</b>",
        card_sha256="0" * 64,
        suite="quick",
        suite_version="nres-1",
        date="2026-12-07",
        passed=False,
        checks=[Check("generation", "format", False, "clip 0: RuntimeError: <script>alert(1)</script>")],
    )
    page = render_html(report)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;1&lt;/b&gt;" in page and "refused (1 of 1 checks failed)" in page
