"""POST/GET /v1/outcomes in-process: outcomes summed by campaign and window, tenants isolated, an asset's
campaign filling in, roles, audit, and bad bodies answered with a 422 problem naming the field."""

from __future__ import annotations

import io
from typing import Any

from fastapi.testclient import TestClient
from inprocess import AppFactory
from PIL import Image

from reelfoundry.store.tables import AuditPendingRow


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 40, 40)).save(buf, format="PNG")
    return buf.getvalue()


def _key(client: TestClient, role: str, tenant: str | None = None) -> dict[str, str]:
    body: dict[str, Any] = {"name": f"{role}-{tenant}", "role": role, **({"tenant": tenant} if tenant else {})}
    r = client.post("/v1/keys", json=body)
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['secret']}"}


def _post(client: TestClient, headers: dict[str, str] | None = None, **body: Any) -> dict[str, Any]:
    r = client.post("/v1/outcomes", json=body, headers=headers or {})
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_outcomes_are_summed_by_campaign_and_window_and_kept_per_tenant(make_app: AppFactory) -> None:
    client, _ = make_app()
    creator = _key(client, "creator")
    other = _key(client, "creator", "rival")
    asset = client.post(
        "/v1/assets", content=_png(), headers={"Content-Type": "image/png"}, params={"campaign": "spring-drop"}
    ).json()
    # The asset's campaign fills in; money arrives as a string or a number and stays exact.
    first = _post(
        client,
        creator,
        asset_id=asset["id"],
        views=60_000,
        clicks=2_000,
        conversions=900,
        revenue_usd="31500.10",
        spend_usd=100,
        channel="tiktok",
        period_start="2026-03-01T00:00:00Z",
        period_end="2026-03-05T00:00:00Z",
    )
    assert first["campaign"] == "spring-drop" and first["revenue_usd"] == "31500.1000"
    _post(
        client,
        creator,
        campaign="spring-drop",
        views=40_000,
        clicks=1_000,
        conversions=600,
        revenue_usd="21000.05",
        spend_usd="50.25",
        period_end="2026-03-08T00:00:00Z",
    )
    _post(
        client,
        creator,
        campaign="influencers",
        views=12_000,
        conversions=15,
        spend_usd=1500,
        period_end="2026-03-07T00:00:00Z",
    )
    # Outside the March window below (period end in April), and another tenant's post in the same campaign.
    _post(client, creator, campaign="spring-drop", views=7, period_end="2026-04-02T00:00:00Z")
    _post(client, other, campaign="spring-drop", views=999_999, conversions=999, revenue_usd=9999)

    r = client.get("/v1/outcomes/summary", params={"from": "2026-03-01", "to": "2026-03-31"}, headers=creator)
    assert r.status_code == 200, r.text
    summary = r.json()
    # Hand sums: views 60,000 + 40,000 + 12,000 = 112,000; conversions 900 + 600 + 15 = 1,515;
    # revenue 31,500.10 + 21,000.05 = 52,500.15; spend 100 + 50.25 + 1,500 = 1,650.25.
    assert summary["totals"] == {
        "records": 3,
        "views": 112_000,
        "clicks": 3_000,
        "conversions": 1_515,
        "revenue_usd": "52500.1500",
        "spend_usd": "1650.2500",
    }
    by = {row["campaign"]: row for row in summary["by_campaign"]}
    assert [row["campaign"] for row in summary["by_campaign"]] == ["spring-drop", "influencers"]  # revenue first
    assert by["spring-drop"]["views"] == 100_000 and by["spring-drop"]["conversions"] == 1_500
    assert by["influencers"]["spend_usd"] == "1500.0000" and by["influencers"]["revenue_usd"] == "0.0000"

    one = client.get("/v1/outcomes/summary", params={"campaign": "spring-drop"}, headers=creator).json()
    assert one["totals"]["views"] == 100_007 and one["totals"]["records"] == 3  # no window: April's too
    assert [row["campaign"] for row in one["by_campaign"]] == ["spring-drop"]

    # One video's own outcomes: the first post only (the asset's), as ROI's `ai.asset` measures them.
    mine = client.get("/v1/outcomes/summary", params={"asset": asset["id"]}, headers=creator).json()
    assert mine["asset_id"] == asset["id"] and mine["totals"]["views"] == 60_000 and mine["totals"]["records"] == 1
    assert client.get("/v1/outcomes/summary", params={"asset": asset["id"]}, headers=other).json()["totals"] == {
        "records": 0, "views": 0, "clicks": 0, "conversions": 0, "revenue_usd": "0.0000", "spend_usd": "0.0000"
    }  # fmt: skip

    rival = client.get("/v1/outcomes/summary", headers=other).json()
    assert rival["totals"]["views"] == 999_999 and rival["totals"]["records"] == 1

    # The list: newest first, filtered by asset, paged with a cursor.
    listed = client.get("/v1/outcomes", params={"asset": asset["id"]}, headers=creator).json()
    assert [o["id"] for o in listed["items"]] == [first["id"]]
    page = client.get("/v1/outcomes", params={"limit": 2, "campaign": "spring-drop"}, headers=creator).json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = client.get(
        "/v1/outcomes", params={"limit": 2, "campaign": "spring-drop", "cursor": page["next_cursor"]}, headers=creator
    ).json()
    assert [o["id"] for o in rest["items"]] == [first["id"]] and rest["next_cursor"] is None
    assert all(
        o["tenant_id"] != listed["items"][0]["tenant_id"]
        for o in client.get("/v1/outcomes", headers=other).json()["items"]
    )


def test_another_tenants_asset_is_not_found_and_roles_are_checked(make_app: AppFactory) -> None:
    client, _ = make_app()
    asset = client.post("/v1/assets", content=_png(), headers={"Content-Type": "image/png"}).json()
    other = _key(client, "admin", "rival")
    r = client.post("/v1/outcomes", json={"asset_id": asset["id"], "views": 5}, headers=other)
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    viewer = _key(client, "viewer")
    assert client.post("/v1/outcomes", json={"campaign": "c", "views": 1}, headers=viewer).status_code == 403
    assert client.get("/v1/outcomes/summary", headers=viewer).status_code == 200
    assert client.get("/v1/outcomes/summary", params={"all_tenants": True}, headers=other).status_code == 403
    made = _post(client, campaign="c", views=3)
    assert client.get("/v1/outcomes/summary", params={"all_tenants": True}).json()["totals"]["views"] == 3
    platform = client.app.state.platform  # type: ignore[attr-defined]
    with platform.db.read() as session:
        actions = [a for (a,) in session.query(AuditPendingRow.action).filter(AuditPendingRow.subject == made["id"])]
    assert actions == ["outcome.posted"]


def test_bad_bodies_and_queries_are_422_problems_naming_the_field(make_app: AppFactory) -> None:
    client, _ = make_app()
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"campaign": "c", "views": -1}, "views", "greater than or equal to 0"),
        ({"campaign": "c", "conversions": 10**13}, "conversions", "less than or equal to"),
        ({"campaign": "c", "revenue_usd": "-5"}, "revenue_usd", "greater than or equal to 0"),
        ({"campaign": "c", "spend_usd": "1.00001"}, "spend_usd", "4 decimal places"),
        ({"campaign": "c", "period_end": "2026-03-01T00:00:00"}, "period_end", "timezone"),
        # Valid offsets whose UTC instant falls outside datetime's range (was a 500 when stored).
        ({"campaign": "c", "period_end": "9999-12-31T23:00:00-12:00"}, "period_end", "out of range"),
        ({"campaign": "c", "period_start": "0001-01-01T00:00:00+14:00"}, "period_start", "out of range"),
        ({"campaign": "c", "colour": "red"}, "colour", "not permitted"),
        ({"campaign": "x" * 129}, "campaign", "at most 128"),
        ({"views": 10}, "body", "name an asset_id, a campaign or both"),
        (
            {"campaign": "c", "period_start": "2026-03-08T00:00:00Z", "period_end": "2026-03-01T00:00:00Z"},
            "body",
            "period_start must not be after period_end",
        ),
    ]
    for body, field, words in cases:
        r = client.post("/v1/outcomes", json=body)
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", (body, r.text)
        assert r.json()["parameter"] == field and words in r.json()["detail"], (body, r.json())
    assert client.get("/v1/outcomes/summary").json()["totals"]["records"] == 0  # nothing half-written
    # View-through conversions: more conversions than clicks is accepted.
    assert (
        client.post("/v1/outcomes", json={"campaign": "c", "views": 10, "clicks": 0, "conversions": 2}).status_code
        == 201
    )
    # "-0" passes ge=0; money must still read "0.0000", as the row is stored, never a negative zero.
    r = client.post("/v1/outcomes", json={"campaign": "c", "revenue_usd": "-0", "spend_usd": "-0.00"})
    assert (r.json()["revenue_usd"], r.json()["spend_usd"]) == ("0.0000", "0.0000"), r.text
    r = client.get("/v1/outcomes/summary", params={"from": "2026-03-05", "to": "2026-03-01"})
    assert r.status_code == 422 and r.json()["parameter"] == "to"
    assert client.get("/v1/outcomes", params={"from": "yesterday"}).json()["parameter"] == "from"
