"""Policy at admission over HTTP: each rule's denial is a 422 problem naming it, and is audited."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from faulty_backend import CARD as FAULTY_CARD
from server import Server, models_file, server_env

from reelfoundry.store import Database, audit
from reelfoundry.store.tables import AuditRow

# A vendor's remote API cannot run here; this card only stands in for one (it is never run: the
# data-class filter refuses confidential work before any backend is touched).
REMOTE_CARD = {
    **FAULTY_CARD,
    "id": "vendor-video",
    "name": "Vendor video API (stand-in)",
    "hosting": {"vendor": "replicate", "region": "us"},
    "price_usd_per_video_second": "0.05",
}


@pytest.fixture(scope="module")
def policy_server(tmp_path_factory: pytest.TempPathFactory) -> Server:
    root = tmp_path_factory.mktemp("policy")
    env = server_env(
        policy_blocked_terms=json.dumps(["gore"]),
        policy_protected_identities=json.dumps(["Jane Doe"]),
        webhook_allowed_hosts=json.dumps(["127.0.0.1"]),
    )
    env["REELFOUNDRY_MODELS_FILE"] = models_file([FAULTY_CARD, REMOTE_CARD])
    srv = Server(root / "data", env).start()
    yield srv
    srv.stop()


@pytest.mark.parametrize(
    ("body", "rule"),
    [
        ({"prompt": "gore and more", "model": "template"}, "blocked-term"),
        ({"prompt": "Jane Doe presents Q3", "model": "template"}, "protected-identity"),
        ({"prompt": "Q3", "model": "vendor-video", "constraints": {"data_class": "confidential"}}, "data-class"),
        ({"prompt": "Q3", "model": "vendor-video", "constraints": {"data_class": "restricted"}}, "data-class"),
    ],
)
def test_each_rule_denies_with_a_422_naming_it(policy_server: Server, body: dict[str, object], rule: str) -> None:
    with policy_server.client() as c:
        r = c.post("/v1/jobs", json=body)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", r.text
    problem = r.json()
    assert problem["rule"] == rule and problem["type"].endswith("policy-denied")


def test_allowed_requests_pass_and_denials_are_audited(policy_server: Server, tmp_path: Path) -> None:
    with policy_server.client() as c:
        ok = c.post(
            "/v1/jobs", json={"prompt": "Jane Doe presents Q3", "model": "template", "consent_reference": "c-17"}
        )
        assert ok.status_code == 201, ok.text
        assert c.post("/v1/jobs", json={"prompt": "gore", "model": "template"}).status_code == 422
    db = Database(f"sqlite:///{policy_server.data_dir / 'reelfoundry.db'}")
    audit.Sealer(db, 1.0).seal_now()  # what the server wrote moments ago may still be pending
    try:
        with db.read() as session:
            rules = [r.data.get("rule") for r in session.query(AuditRow) if r.action == "policy.denied"]
    finally:
        db.dispose()
    assert "blocked-term" in rules


def test_webhook_hosts_outside_the_allow_list_are_refused(policy_server: Server) -> None:
    with policy_server.client() as c:
        far = c.post("/v1/jobs", json={"prompt": "x", "model": "template", "webhook_url": "http://example.com/hook"})
        assert far.status_code == 422 and far.json()["parameter"] == "webhook_url", far.text
        near = c.post("/v1/jobs", json={"prompt": "x", "model": "template", "webhook_url": "http://127.0.0.1:9/hook"})
        assert near.status_code == 201, near.text
