"""GET /v1/kpi and /ui/kpi in-process: tenant scoping, the window, bad dates as 422 problems, the empty page."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from inprocess import AppFactory

from reelfoundry.ids import new_id
from reelfoundry.platform import Platform
from reelfoundry.store.tables import CostRecordRow, JobRow


def _key(client: TestClient, role: str, tenant: str | None = None) -> str:
    body: dict[str, Any] = {"name": f"{role}-{tenant}", "role": role, **({"tenant": tenant} if tenant else {})}
    r = client.post("/v1/keys", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["secret"])


def _tenant_id(client: TestClient, key: str) -> str:
    return str(client.get("/v1/tenant", headers={"Authorization": f"Bearer {key}"}).json()["id"])


def _ended_job(platform: Platform, tenant_id: str, day: int, usd: str) -> None:
    """A succeeded generation job that waited 30 s and its cost record (busy 30 s, idle 10 s on a CPU)."""
    created = datetime(2026, 11, day, 12, tzinfo=UTC)
    ended = datetime(2026, 11, day, 12, 5, tzinfo=UTC)
    with platform.db.write() as s:
        job_id = new_id()
        s.add(
            JobRow(
                id=job_id, tenant_id=tenant_id, state="succeeded", model="template", priority=0, request={},
                request_hash="h", attempts=1, max_attempts=3, created_at=created,
                started_at=created.replace(second=30), finished_at=ended,
            )
        )  # fmt: skip
        s.flush()
        s.add(
            CostRecordRow(
                id=new_id(), job_id=job_id, tenant_id=tenant_id, model="template", state="succeeded", device="cpu",
                device_share=Decimal(1), device_seconds=30.0, idle_seconds=10.0, energy_kwh=Decimal("0.001"),
                co2e_kg=Decimal("0.0005"), stored_bytes=0, video_seconds=1.0, egress_bytes=0,
                compute_usd=Decimal(usd), idle_usd=Decimal(0), storage_usd=Decimal(0), egress_usd=Decimal(0),
                total_usd=Decimal(usd), created_at=ended,
            )
        )  # fmt: skip


def test_scoped_to_the_callers_tenant_and_every_tenant_only_for_the_operator(make_app: AppFactory) -> None:
    client, admin = make_app()
    platform: Platform = client.app.state.platform  # type: ignore[attr-defined]
    other_admin = _key(client, "admin", "globex")
    viewer = _key(client, "viewer")
    _ended_job(platform, _tenant_id(client, admin), 1, "0.10")
    _ended_job(platform, _tenant_id(client, admin), 2, "0.30")
    _ended_job(platform, _tenant_id(client, other_admin), 2, "5.00")

    mine = client.get("/v1/kpi", headers={"Authorization": f"Bearer {viewer}"})  # readers may read it
    assert mine.status_code == 200, mine.text
    body = mine.json()
    assert body["cost_per_inference_usd"]["value"] == "0.2000000000" and body["cost_per_inference_usd"]["n"] == 2
    assert body["gpu_utilization"]["value"] == "0.7500" and body["gpu_utilization"]["provenance"] == "measured"
    assert body["queue_wait_s"]["p50_s"] == 30.0 and body["from"] is None and body["to"] is None
    assert not body["approval_rate"]["available"] and body["approval_rate"]["reason"]

    theirs = client.get("/v1/kpi", headers={"Authorization": f"Bearer {other_admin}"}).json()
    assert theirs["cost_per_inference_usd"]["value"] == "5.0000000000"
    everyone = client.get("/v1/kpi", params={"all_tenants": "true"}).json()
    assert everyone["tenant_id"] is None and everyone["cost_per_inference_usd"]["n"] == 3
    refused = client.get("/v1/kpi", params={"all_tenants": "true"}, headers={"Authorization": f"Bearer {other_admin}"})
    assert refused.status_code == 403 and refused.headers["content-type"].startswith("application/problem+json")


def test_the_window_and_bad_dates(make_app: AppFactory) -> None:
    client, admin = make_app()
    platform: Platform = client.app.state.platform  # type: ignore[attr-defined]
    _ended_job(platform, _tenant_id(client, admin), 1, "0.10")
    _ended_job(platform, _tenant_id(client, admin), 2, "0.30")

    day2 = client.get("/v1/kpi", params={"from": "2026-11-02", "to": "2026-11-02"}).json()
    assert (day2["from"], day2["to"]) == ("2026-11-02T00:00:00Z", "2026-11-03T00:00:00Z")
    assert day2["cost_per_inference_usd"]["value"] == "0.3000000000" and day2["cost_per_inference_usd"]["n"] == 1
    points = {t["name"]: t["points"] for t in day2["trends"]}
    assert points["cost_per_inference_usd"] == [{"day": "2026-11-02", "value": "0.3000000000", "n": 1}]

    for params, field in (
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-13-01"}, "to"),
        ({"from": "2026-11-03", "to": "2026-11-01"}, "to"),
    ):
        r = client.get("/v1/kpi", params=params)
        assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json"), r.text
        assert r.json()["parameter"] == field
    assert client.get("/v1/kpi", params={"from": "2" * 41}).status_code == 422  # bounded length


def _no_whole_scorecard(*args: Any) -> None:
    raise AssertionError("the whole scorecard was computed for one chart")


def _signed_in(client: TestClient, key: str) -> None:
    page = client.get("/ui/login")
    csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', page.text)
    assert csrf
    r = client.post(
        "/ui/login", data={"api_key": key, "next": "/ui/kpi", "csrf": csrf.group(1)}, follow_redirects=False
    )
    assert r.status_code == 303, r.text


def test_the_dashboard_with_no_data_says_so_and_draws_empty_charts(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, admin = make_app()
    client.headers.pop("Authorization")
    assert client.get("/ui/kpi/charts/queue_wait.svg").status_code == 401  # an image cannot follow a redirect
    assert "/ui/login" in client.get("/ui/kpi", follow_redirects=False).headers["location"]
    _signed_in(client, admin)

    page = client.get("/ui/kpi")
    assert page.status_code == 200 and "No data yet" in page.text
    assert "<script" not in page.text and page.headers["content-security-policy"].startswith("default-src 'none'")
    charts = re.findall(r'<img src="(/ui/kpi/charts/[a-z_]+\.svg)"', page.text)
    assert len(charts) == 5
    svg = client.get(charts[0])
    assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
    assert svg.text.lstrip().startswith("<?xml") and "<script" not in svg.text
    assert client.get("/ui/kpi/charts/nope.svg").status_code == 404

    bad = client.get("/ui/kpi", params={"from": "not-a-date"})
    assert bad.status_code == 200 and "from must be a date" in bad.text  # said on the page, not an error page
    # A chart reads only its trends: the page's five images must not compute five whole scorecards (every
    # eligible asset, model card and outcome sum, again and again per view).
    monkeypatch.setattr("reelfoundry.web.routes.scorecard", _no_whole_scorecard)
    assert client.get(charts[1]).status_code == 200
