"""Usage reports: cost records grouped by tenant, project, campaign, model, device or day, with unit economics.

Unit economics count every attempt's cost in: cost per video divides the whole group's spend (failed,
cancelled and rejected work included) by the videos it delivered, so a model that often fails or is
often rejected looks as expensive as it is.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from reelfoundry.errors import InvalidParameter
from reelfoundry.finops.meter import USD
from reelfoundry.schema import ReviewState
from reelfoundry.store.tables import AssetRow, CostRecordRow, JobRow, TenantRow

GROUPS = ("tenant", "project", "campaign", "model", "device", "day")
MONEY = ("compute_usd", "idle_usd", "storage_usd", "egress_usd", "total_usd")
_APPROVED = (ReviewState.approved.value, ReviewState.published.value)


def parse_when(name: str, value: str | None, *, end: bool) -> datetime | None:
    """A date (YYYY-MM-DD; as ``to``, the whole day is included) or an ISO datetime, as UTC."""
    if value is None:
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime.combine(day + timedelta(days=1) if end else day, time(), UTC)
        when = datetime.fromisoformat(value)
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidParameter(
            name, f"{name} must be a date (YYYY-MM-DD) or an ISO 8601 datetime in range, got {value!r}"
        ) from None


def parse_by(value: str | None) -> list[str]:
    """``"model,day"`` → ``["model", "day"]``; InvalidParameter naming ``by`` for anything else."""
    if not value:
        return []
    keys = [k.strip() for k in value.split(",") if k.strip()]
    bad = [k for k in keys if k not in GROUPS]
    if bad or len(set(keys)) != len(keys):
        raise InvalidParameter("by", f"by takes distinct names from {', '.join(GROUPS)}; got {value!r}")
    return keys


@dataclass
class _Acc:
    jobs: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    approved: int = 0
    video_seconds: float = 0.0
    device_seconds: float = 0.0
    idle_seconds: float = 0.0
    money: dict[str, Decimal] = field(default_factory=lambda: dict.fromkeys(MONEY, Decimal(0)))
    energy_kwh: Decimal = Decimal(0)
    co2e_kg: Decimal = Decimal(0)


def _per(total: Decimal, count: float) -> Decimal | None:
    return (total / Decimal(str(count))).quantize(USD) if count else None


def report(
    session: Session,
    *,
    tenant_id: str | None,
    by: list[str],
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[dict[str, Any]]:
    """One row per group (all cost records in one row when ``by`` is empty), sorted by the group keys.

    ``tenant_id`` None reports every tenant (the operator's view); ``start`` is inclusive, ``end`` exclusive.
    """
    stmt = (
        select(CostRecordRow, TenantRow.name, AssetRow.review_state)
        .join(TenantRow, TenantRow.id == CostRecordRow.tenant_id)
        .join(JobRow, JobRow.id == CostRecordRow.job_id)
        .outerjoin(AssetRow, AssetRow.id == JobRow.asset_id)
    )
    if tenant_id is not None:
        stmt = stmt.where(CostRecordRow.tenant_id == tenant_id)
    if start is not None:
        stmt = stmt.where(CostRecordRow.created_at >= start)
    if end is not None:
        stmt = stmt.where(CostRecordRow.created_at < end)
    groups: dict[tuple[str | None, ...], _Acc] = defaultdict(_Acc)
    for rec, tenant_name, review_state in session.execute(stmt):
        values = {
            "tenant": tenant_name,
            "project": rec.project,
            "campaign": rec.campaign,
            "model": rec.model,
            "device": rec.device,
            "day": rec.created_at.date().isoformat(),
        }
        acc = groups[tuple(values[k] for k in by)]
        acc.jobs += 1
        acc.succeeded += rec.state == "succeeded"
        acc.failed += rec.state == "failed"
        acc.cancelled += rec.state == "cancelled"
        acc.approved += review_state in _APPROVED
        acc.video_seconds += rec.video_seconds if rec.state == "succeeded" else 0.0
        acc.device_seconds += rec.device_seconds
        acc.idle_seconds += rec.idle_seconds
        for money in MONEY:
            acc.money[money] += getattr(rec, money)
        acc.energy_kwh += rec.energy_kwh
        acc.co2e_kg += rec.co2e_kg
    rows = []
    for group in sorted(groups, key=lambda k: tuple("" if v is None else v for v in k)):
        acc = groups[group]
        total = acc.money["total_usd"]
        rows.append(
            {
                **dict(zip(by, group, strict=True)),
                "jobs": acc.jobs,
                "succeeded": acc.succeeded,
                "failed": acc.failed,
                "cancelled": acc.cancelled,
                "approved": acc.approved,
                "video_seconds": round(acc.video_seconds, 3),
                "device_seconds": round(acc.device_seconds, 3),
                "idle_seconds": round(acc.idle_seconds, 3),
                **acc.money,
                "energy_kwh": acc.energy_kwh,
                "co2e_kg": acc.co2e_kg,
                "cost_per_video_usd": _per(total, acc.succeeded),
                "cost_per_video_second_usd": _per(total, acc.video_seconds),
                "cost_per_approved_video_usd": _per(total, acc.approved),
            }
        )
    return rows


def to_json(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Decimals as fixed-point strings (exact), everything else as is."""
    return [{k: format(v, "f") if isinstance(v, Decimal) else v for k, v in row.items()} for row in rows]
