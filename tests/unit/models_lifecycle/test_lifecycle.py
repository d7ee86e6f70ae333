"""A card's lifecycle: added over the API as a candidate (listed, never routed), approved only with a passing
onboarding report of that very card, then routed; model agility (registered → approved → first job); and the
newest NRES evaluation as the card's evaluation and quality."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from inprocess import AppFactory

from reelfoundry.config import Settings
from reelfoundry.evaluation.onboarding import onboard
from reelfoundry.portfolio.backends.template import TEMPLATE_CARD
from reelfoundry.portfolio.registry import Portfolio
from reelfoundry.schema import ModelCard
from reelfoundry.store import Database
from reelfoundry.store import models as modelstore
from reelfoundry.store.tables import AuditPendingRow, AuditRow

PROMO = {
    **TEMPLATE_CARD.model_dump(mode="json", exclude={"speed", "quality", "resources", "status", "evaluation"}),
    "id": "promo",
    "name": "Promo renderer",
}


@functools.cache
def passing_report() -> dict[str, Any]:
    """A real onboarding run of PROMO (once for the module)."""
    report = onboard(ModelCard.model_validate(PROMO), Settings(data_dir=Path("unused-data-dir")))
    assert report.passed, report.failed
    return report.to_json()


def record(client: TestClient, model: str, report: dict[str, Any]) -> None:
    platform = client.app.state.platform  # type: ignore[attr-defined]
    with platform.db.write() as session:
        modelstore.add_evaluation(session, model, modelstore.ONBOARDING, "nres-1", report)


def nres_result(model: str, fidelity: float, date: str = "2026-12-07", suite: str = "quick") -> dict[str, Any]:
    return {
        "model": model,
        "suite": suite,
        "suite_version": "nres-1",
        "date": date,
        "fidelity": fidelity,
        "frechet_distance": 100.0,
        "nres": fidelity / 2,
        "seconds_per_clip": 1.5,
        "cost_per_clip_usd": "0.0001",
        "peak_memory_mb": 900.0,
        "feature_extractor": "probe",
        "reference": "procedural",
    }


def test_a_card_added_over_the_api_is_a_candidate_until_a_passing_report_approves_it(make_app: AppFactory) -> None:
    client, _ = make_app()
    added = client.post("/v1/models", json=PROMO)
    assert added.status_code == 201 and added.json()["status"] == "candidate"
    listed = {m["id"]: m["status"] for m in client.get("/v1/models", params={"limit": 200}).json()["items"]}
    assert listed["promo"] == "candidate" and listed["template"] == "approved"
    named = client.post("/v1/jobs", json={"prompt": "p", "model": "promo"})
    assert named.status_code == 422 and named.json()["parameter"] == "model" and "candidate" in named.json()["detail"]
    auto = client.post("/v1/jobs", json={"prompt": "p", "constraints": {"objective": "cost"}}).json()
    assert "promo" not in {c["model"] for c in auto["route"]["candidates"]}
    # No report, a failed one, a passing one of another card: each a 409, still a candidate.
    assert client.post("/v1/models/promo/approve").status_code == 409
    record(client, "promo", {**passing_report(), "passed": False})
    assert client.post("/v1/models/promo/approve").status_code == 409
    record(client, "promo", {**passing_report(), "card_sha256": "0" * 64})
    refused = client.post("/v1/models/promo/approve")
    assert refused.status_code == 409 and "models onboard" in refused.json()["detail"]
    assert client.get("/v1/models/promo").json()["status"] == "candidate"
    record(client, "promo", passing_report())
    approved = client.post("/v1/models/promo/approve")
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    assert client.post("/v1/models/promo/approve").status_code == 200  # approving again changes nothing
    job = client.post("/v1/jobs", json={"prompt": "p", "model": "promo"})
    assert job.status_code == 201 and job.json()["model"] == "promo"
    lifecycle = client.get("/v1/models/promo/lifecycle").json()
    assert lifecycle["status"] == "approved" and lifecycle["first_job_at"] is not None
    assert 0 <= lifecycle["registered_to_approved_s"] <= lifecycle["registered_to_first_job_s"]
    platform = client.app.state.platform  # type: ignore[attr-defined]
    with platform.db.read() as session:
        actions = {a for (a,) in session.query(AuditPendingRow.action).filter(AuditPendingRow.subject == "promo")}
        actions |= {a for (a,) in session.query(AuditRow.action).filter(AuditRow.subject == "promo")}
    assert {"model.added", "model.approved"} <= actions


def test_approval_is_for_added_cards_and_the_platform_sets_status(make_app: AppFactory) -> None:
    client, _ = make_app()
    assert client.post("/v1/models/template/approve").status_code == 409  # approved by definition
    assert client.post("/v1/models/nope/approve").status_code == 404
    assert client.get("/v1/models/template/lifecycle").status_code == 404
    # What the platform sets is ignored in a posted card: a card read back can be posted as it is.
    evaluation = {"suite": "quick", "suite_version": "x", "measured_at": "2026-12-07", "fidelity": 1, "nres": 1}
    given = client.post("/v1/models", json={**PROMO, "status": "approved", "evaluation": evaluation})
    assert given.status_code == 201 and given.json()["status"] == "candidate" and given.json()["evaluation"] is None
    assert client.get("/v1/models/promo").json()["status"] == "candidate"
    facts = client.get("/v1/models/promo/lifecycle").json()
    assert facts["status"] == "candidate" and facts["approved_at"] is None and facts["first_job_at"] is None


def test_the_newest_nres_run_is_the_cards_evaluation_and_quality(database: Database) -> None:
    portfolio = Portfolio(refresh_s=0)
    before = portfolio.card("template").quality
    with database.write() as session:
        modelstore.add_evaluation(session, "template", "quick", "nres-1", nres_result("template", 0.2, "2026-12-01"))
    with database.write() as session:
        newest = nres_result("template", 0.4, suite="standard")
        modelstore.add_evaluation(session, "template", "standard", "nres-1", newest)
        modelstore.add_evaluation(session, "template", modelstore.ONBOARDING, "nres-1", {"passed": True})
        modelstore.add_evaluation(session, "gone", "quick", "nres-1", nres_result("gone", 0.9))
    portfolio.refresh(database, force=True)
    card = portfolio.card("template")
    assert card.evaluation is not None and card.evaluation.suite == "standard" and card.evaluation.fidelity == 0.4
    assert card.quality is not None and card.quality.score == 0.4 and "NRES fidelity" in card.quality.source
    assert str(card.evaluation.measured_at) == "2026-12-07" and before != card.quality
    assert "gone" not in portfolio.cards


def test_approve_and_the_passing_report_on_both_databases(database: Database) -> None:
    card = ModelCard.model_validate(PROMO)
    with database.write() as session:
        row = modelstore.add_card(session, card, None, status=modelstore.CANDIDATE)
        assert row.status == "candidate" and row.approved_at is None
        assert modelstore.passing_report(session, card) is None
        report = {"passed": True, "card_sha256": modelstore.card_digest(card)}
        modelstore.add_evaluation(session, card.id, modelstore.ONBOARDING, "nres-1", report)
        assert modelstore.passing_report(session, card) is not None
        other = card.model_copy(update={"default_width": 320})
        assert modelstore.passing_report(session, other) is None  # a report is of one card
    with database.write() as session:
        approved = modelstore.approve(session, card.id)
        assert approved is not None and approved.status == "approved" and approved.approved_at is not None
        first = approved.approved_at
    with database.write() as session:
        again = modelstore.approve(session, card.id)
        assert again is not None and again.approved_at == first
        assert modelstore.approve(session, "nope") is None
    portfolio = Portfolio(refresh_s=0)
    portfolio.refresh(database, force=True)
    assert portfolio.status("promo") == "approved" and portfolio.candidates == frozenset()


@pytest.mark.parametrize("status", ["candidate", "approved"])
def test_the_portfolio_knows_its_candidates(database: Database, status: str) -> None:
    with database.write() as session:
        modelstore.add_card(session, ModelCard.model_validate(PROMO), None, status=status)
    portfolio = Portfolio(refresh_s=0)
    portfolio.refresh(database, force=True)
    assert portfolio.status("promo") == status and portfolio.status("template") == "approved"
    assert portfolio.candidates == (frozenset({"promo"}) if status == "candidate" else frozenset())
    assert portfolio.cards["promo"].status == status
