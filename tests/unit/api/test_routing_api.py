"""Routing over the API, in-process: the RoutePlan made once at admission and shown on the job; the portfolio's
cards added and removed by the operator's admin without a restart (routable once onboarded and approved); a
queued job keeps the card it was routed with after that card changes or goes."""

from __future__ import annotations

import functools
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from inprocess import AppFactory

from reelfoundry import admission
from reelfoundry.api.routes import models as models_route
from reelfoundry.config import Settings
from reelfoundry.evaluation.onboarding import onboard
from reelfoundry.execution.engine import Engine
from reelfoundry.portfolio.backends.template import TEMPLATE_CARD
from reelfoundry.schema import ModelCard
from reelfoundry.store import models as modelstore
from reelfoundry.store.tables import AuditPendingRow, AuditRow, JobRow

PROMO = {
    **TEMPLATE_CARD.model_dump(mode="json", exclude={"speed", "quality", "resources"}),
    "id": "promo",
    "name": "Promo renderer",
    "default_width": 320,
    "default_height": 180,
    "default_num_frames": 24,
}


@functools.cache
def _onboarding_report(card_json: str) -> dict[str, Any]:
    """A real onboarding run of the card (once per card for the whole module: seconds each; it writes nothing
    to the data dir)."""
    card = ModelCard.model_validate_json(card_json)
    report = onboard(card, Settings(data_dir=Path("unused-data-dir")))
    assert report.passed, report.failed
    return report.to_json()


def add_approved(client: TestClient, body: dict[str, Any]) -> None:
    """Add a card and approve it as the operator does: onboarding's passing report recorded, then approve."""
    assert client.post("/v1/models", json=body).status_code == 201
    card = ModelCard.model_validate(body)
    report = _onboarding_report(card.model_dump_json())
    platform = client.app.state.platform  # type: ignore[attr-defined]
    with platform.db.write() as session:
        modelstore.add_evaluation(session, card.id, modelstore.ONBOARDING, report["suite_version"], report)
    r = client.post(f"/v1/models/{card.id}/approve")
    assert r.status_code == 200 and r.json()["status"] == "approved", r.text


def test_a_cost_objective_without_a_model_gets_a_route_naming_the_choice_and_why(make_app: AppFactory) -> None:
    client, _ = make_app()
    r = client.post("/v1/jobs", json={"prompt": "a red circle moving left", "constraints": {"objective": "cost"}})
    assert r.status_code == 201, r.text
    job = client.get(f"/v1/jobs/{r.json()['id']}").json()
    route = job["route"]
    assert route["objective"] == "cost" and route["chosen"] == job["model"]
    assert job["model"] in route["reason"] and "cheapest" in route["reason"]
    passed = [c for c in route["candidates"] if c["filtered_by"] is None]
    cheapest = min(passed, key=lambda c: float(c["estimated_usd"]))
    assert cheapest["model"] == route["chosen"] and cheapest["params"]["seed"] == job["request"]["seed"]
    assert job["estimated_usd"] == cheapest["estimated_usd"]
    assert {c["model"] for c in route["candidates"]} >= {"template", "builtin"}
    assert route["fallbacks"] and route["chosen"] not in route["fallbacks"]


def test_an_infeasible_deadline_is_a_422_naming_it_and_no_job(make_app: AppFactory) -> None:
    client, _ = make_app()
    r = client.post("/v1/jobs", json={"prompt": "p", "model": "builtin", "constraints": {"deadline_s": 0.01}})
    assert r.status_code == 422 and r.json()["parameter"] == "constraints.deadline_s", r.text
    r = client.post("/v1/jobs", json={"prompt": "p", "constraints": {"deadline_s": 0.01}})
    assert r.status_code == 422 and r.json()["parameter"] == "constraints.deadline_s", r.text
    assert "deadline" in r.json()["detail"]
    assert client.get("/v1/jobs").json()["items"] == []


def test_the_operator_adds_and_removes_cards_live_and_audited(make_app: AppFactory) -> None:
    client, _ = make_app()
    add_approved(client, PROMO)
    assert "promo" in [m["id"] for m in client.get("/v1/models", params={"limit": 200}).json()["items"]]
    assert client.get("/v1/models/promo").json()["default_width"] == 320
    r = client.post("/v1/jobs", json={"prompt": "p", "model": "promo"})
    assert r.status_code == 201 and r.json()["model"] == "promo"
    again = client.post("/v1/models", json=PROMO)
    assert again.status_code == 409 and again.headers["content-type"] == "application/problem+json"
    assert client.post("/v1/models", json={**PROMO, "id": "template"}).status_code == 409
    bad = client.post("/v1/models", json={**PROMO, "id": "nope", "backend": "no.such:Backend"})
    assert bad.status_code == 422 and bad.json()["parameter"] == "backend"
    invalid = client.post("/v1/models", json={**PROMO, "id": "x", "resources": {"devices": ["TPU"]}})
    assert invalid.status_code == 422
    assert client.delete("/v1/models/template").status_code == 409
    assert client.delete("/v1/models/promo").status_code == 200
    assert client.delete("/v1/models/promo").status_code == 404
    assert client.get("/v1/models/promo").status_code == 404
    r = client.post("/v1/jobs", json={"prompt": "p", "model": "promo"})
    assert r.status_code == 404 or r.status_code == 422, r.text
    platform = client.app.state.platform  # type: ignore[attr-defined]
    with platform.db.read() as session:  # entries are pending until the sealer chains them
        actions = {a for (a,) in session.query(AuditPendingRow.action).filter(AuditPendingRow.subject == "promo")}
        actions |= {a for (a,) in session.query(AuditRow.action).filter(AuditRow.subject == "promo")}
    assert {"model.added", "model.approved", "model.deleted"} <= actions, actions


@pytest.mark.parametrize(("role", "tenant"), [("creator", None), ("admin", "acme")])
def test_only_the_operators_admins_change_the_portfolio(make_app: AppFactory, role: str, tenant: str | None) -> None:
    client, _ = make_app()
    body: dict[str, Any] = {"name": "k", "role": role, **({"tenant": tenant} if tenant else {})}
    key = client.post("/v1/keys", json=body).json()["secret"]
    headers = {"Authorization": f"Bearer {key}"}
    assert client.post("/v1/models", json=PROMO, headers=headers).status_code == 403
    assert client.get("/v1/models/template", headers=headers).status_code == 200


def test_a_queued_job_runs_with_the_card_it_was_routed_with_after_that_card_changes(make_app: AppFactory) -> None:
    client, _ = make_app()
    add_approved(client, PROMO)
    job = client.post("/v1/jobs", json={"prompt": "p", "model": "promo"}).json()
    # The card changes (removed, then added again with another default size) while the job is queued.
    assert client.delete("/v1/models/promo").status_code == 200
    assert client.post("/v1/models", json={**PROMO, "default_width": 640, "default_height": 360}).status_code == 201
    platform = client.app.state.platform  # type: ignore[attr-defined]
    engine = SimpleNamespace(storage=platform.storage, portfolio=platform.portfolio)
    with platform.db.read() as session:
        row = session.get(JobRow, job["id"])
        card, params = Engine._resolve(engine, session, row)  # type: ignore[arg-type]
    assert card.default_width == 320 and (params.width, params.height, params.num_frames) == (320, 180, 24)
    assert platform.portfolio.card("promo").default_width == 640
    # and the job's route, read back, is the one made at admission
    assert client.get(f"/v1/jobs/{job['id']}").json()["route"] == job["route"]


def test_a_card_that_would_break_routing_is_refused_when_posted(make_app: AppFactory) -> None:
    client, _ = make_app()
    # "auto" asks the router to choose: a card of that id could never be named.
    assert client.post("/v1/models", json={**PROMO, "id": "auto"}).status_code == 422
    # A malformed estimate hint would make every request's cost estimate raise (a 500 for all of them).
    hint = {**PROMO, "id": "hint", "options": {"estimate_s": {"fixed": "x", "per_frame_step": 1}}}
    assert client.post("/v1/models", json=hint).status_code == 422
    assert client.post("/v1/models", json={**PROMO, "id": "wide", "max_width": 10**9}).status_code == 422
    assert client.post("/v1/jobs", json={"prompt": "p"}).status_code == 201


def test_a_card_changed_while_a_job_is_admitted_does_not_change_the_cards_it_keeps(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = make_app()
    add_approved(client, PROMO)
    real_plan = admission.plan

    def plan_then_replace(*args: Any) -> Any:
        route = real_plan(*args)
        # Meanwhile another request replaces the card with one of another default size.
        assert client.delete("/v1/models/promo").status_code == 200
        assert client.post("/v1/models", json={**PROMO, "default_width": 640}).status_code == 201
        return route

    monkeypatch.setattr(admission, "plan", plan_then_replace)
    r = client.post("/v1/jobs", json={"prompt": "p", "model": "promo"})
    assert r.status_code == 201, r.text
    platform = client.app.state.platform  # type: ignore[attr-defined]
    with platform.db.read() as session:
        row = session.get(JobRow, r.json()["id"])
        assert row.route_cards["promo"]["default_width"] == 320 == row.route["candidates"][0]["params"]["width"]


def test_a_card_added_over_the_api_names_no_import_path(make_app: AppFactory) -> None:
    client, _ = make_app()
    # importable and a Backend: the models file may name it, an API key may not
    module_path = {**PROMO, "id": "mod", "backend": "reelfoundry.portfolio.backends.template:TemplateBackend"}
    r = client.post("/v1/models", json=module_path)
    assert r.status_code == 422 and r.json()["parameter"] == "backend" and "models file" in r.json()["detail"]
    pipeline = {
        **PROMO,
        "id": "pipe",
        "backend": "diffusers",
        "task": "text-to-video",
        "options": {"path": "org/model", "pipeline_class": "os:system"},
    }
    r = client.post("/v1/models", json=pipeline)
    assert r.status_code == 422 and r.json()["parameter"] == "options.pipeline_class"
    assert client.post("/v1/models", json={**pipeline, "options": {"path": "org/model"}}).status_code == 201
    assert {"mod", "pipe"} & {m["id"] for m in client.get("/v1/models", params={"limit": 200}).json()["items"]} == {
        "pipe"
    }


def test_the_cards_added_over_the_api_are_bounded_in_number(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = make_app()
    monkeypatch.setattr(models_route, "MAX_CARDS", 2)
    assert [client.post("/v1/models", json={**PROMO, "id": f"p{i}"}).status_code for i in range(3)] == [201, 201, 409]
    assert client.delete("/v1/models/p0").status_code == 200
    assert client.post("/v1/models", json={**PROMO, "id": "p2"}).status_code == 201


def test_a_card_over_the_api_loads_weights_only_from_the_hub_or_the_models_root(make_app: AppFactory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "models"
    (root / "ltx").mkdir(parents=True)
    diffusers = {**PROMO, "backend": "diffusers", "task": "text-to-video"}
    client, _ = make_app()
    for path in ("/etc", str(root / "ltx"), "../../etc", "~/weights"):
        r = client.post("/v1/models", json={**diffusers, "id": "local", "options": {"path": path}})
        assert r.status_code == 422 and r.json()["parameter"] == "options.path", (path, r.text)
    assert (
        client.post(
            "/v1/models", json={**diffusers, "id": "hub", "options": {"path": "Lightricks/LTX-Video"}}
        ).status_code
        == 201
    )
    client, _ = make_app(models_root=root)
    assert (
        client.post("/v1/models", json={**diffusers, "id": "local", "options": {"path": str(root / "ltx")}}).status_code
        == 201
    )
    escape = client.post("/v1/models", json={**diffusers, "id": "esc", "options": {"path": str(root / ".." / "x")}})
    assert escape.status_code == 422 and escape.json()["parameter"] == "options.path"
