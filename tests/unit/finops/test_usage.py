"""Usage reports on SQLite and PostgreSQL: grouping, date filters, unit economics with failures and rejections in."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from reelfoundry.errors import InvalidParameter
from reelfoundry.finops import usage
from reelfoundry.ids import new_id
from reelfoundry.store import Database
from reelfoundry.store import keys as keystore
from reelfoundry.store.tables import AssetRow, CostRecordRow, JobRow

D = Decimal


def _job(
    s,
    tenant_id: str,
    *,
    model: str,
    project: str | None,
    state: str,
    day: int,
    usd: str,
    review: str | None = None,
    video_s: float = 2.0,
    kwh: str = "0.001",
) -> None:  # type: ignore[no-untyped-def]
    at = datetime(2026, 11, day, 12, 0, tzinfo=UTC)
    job_id, asset_id = new_id(), new_id() if review else None
    s.add(
        JobRow(
            id=job_id,
            tenant_id=tenant_id,
            state=state,
            model=model,
            priority=0,
            request={},
            request_hash="h",
            project=project,
            attempts=1,
            max_attempts=3,
            asset_id=asset_id,
            created_at=at,
            finished_at=at,
        )
    )
    s.flush()
    if review:
        s.add(
            AssetRow(
                id=asset_id,
                tenant_id=tenant_id,
                job_id=job_id,
                media_type="video/mp4",
                storage_key="k",
                bytes=1,
                sha256="x",
                review_state=review,
                created_at=at,
            )
        )
    money = D(usd)
    s.add(
        CostRecordRow(
            id=new_id(),
            job_id=job_id,
            tenant_id=tenant_id,
            project=project,
            model=model,
            state=state,
            device="cpu",
            device_seconds=10.0,
            idle_seconds=1.0,
            energy_kwh=D(kwh),
            co2e_kg=D(kwh) / 2,
            stored_bytes=0,
            video_seconds=video_s if state == "succeeded" else 0.0,
            egress_bytes=0,
            compute_usd=money,
            idle_usd=D(0),
            storage_usd=D(0),
            egress_usd=D(0),
            total_usd=money,
            created_at=at,
        )
    )


@pytest.fixture
def tenants(database: Database) -> tuple[str, str]:
    with database.write() as s:
        a = keystore.get_or_create_tenant(s, "acme").id
        b = keystore.get_or_create_tenant(s, "globex").id
        _job(s, a, model="builtin", project="spring", state="succeeded", day=1, usd="0.30", review="approved")
        _job(s, a, model="builtin", project="spring", state="succeeded", day=1, usd="0.30", review="rejected")
        _job(s, a, model="builtin", project="autumn", state="failed", day=2, usd="0.15")
        _job(s, a, model="template", project=None, state="succeeded", day=2, usd="0.01", review="published")
        _job(s, a, model="template", project=None, state="cancelled", day=3, usd="0")
        _job(s, b, model="builtin", project="spring", state="succeeded", day=1, usd="9.99", review="approved")
    return a, b


def test_grouping_by_model_counts_every_attempt_into_unit_costs(database: Database, tenants: tuple[str, str]) -> None:
    with database.read() as s:
        rows = usage.report(s, tenant_id=tenants[0], by=["model"])
    builtin, template = rows
    assert builtin["model"] == "builtin" and builtin["jobs"] == 3 and builtin["failed"] == 1
    assert builtin["total_usd"] == D("0.75") and builtin["energy_kwh"] == D("0.003")
    assert builtin["cost_per_video_usd"] == D("0.375")  # 0.75 over 2 videos: the failure is paid for
    assert builtin["cost_per_approved_video_usd"] == D("0.75")  # 1 approved: rejected and failed in
    assert builtin["cost_per_video_second_usd"] == D("0.1875")
    assert template["jobs"] == 2 and template["cancelled"] == 1 and template["approved"] == 1
    assert set(builtin) >= {"model", "jobs", "total_usd", "energy_kwh", "co2e_kg", "cost_per_video_usd"}
    assert "project" not in builtin


def test_two_keys_and_date_filters(database: Database, tenants: tuple[str, str]) -> None:
    with database.read() as s:
        rows = usage.report(s, tenant_id=tenants[0], by=["project", "day"])
        assert [(r["project"], r["day"], r["jobs"]) for r in rows] == [
            (None, "2026-11-02", 1),
            (None, "2026-11-03", 1),
            ("autumn", "2026-11-02", 1),
            ("spring", "2026-11-01", 2),
        ]
        day2 = usage.report(
            s,
            tenant_id=tenants[0],
            by=[],
            start=datetime(2026, 11, 2, tzinfo=UTC),
            end=datetime(2026, 11, 3, tzinfo=UTC),
        )
        assert len(day2) == 1 and day2[0]["jobs"] == 2 and day2[0]["total_usd"] == D("0.16")
        everyone = usage.report(s, tenant_id=None, by=["tenant"])
        assert [(r["tenant"], r["jobs"]) for r in everyone] == [("acme", 5), ("globex", 1)]
        assert usage.report(s, tenant_id=tenants[1], by=["model"])[0]["total_usd"] == D("9.99")
        assert usage.report(s, tenant_id=tenants[0], by=["model"], start=datetime(2027, 1, 1, tzinfo=UTC)) == []


@pytest.mark.parametrize("bad", ["colour", "model,model", "model;day"])
def test_bad_group_names_are_refused(bad: str) -> None:
    with pytest.raises(InvalidParameter) as err:
        usage.parse_by(bad)
    assert err.value.parameter == "by"
