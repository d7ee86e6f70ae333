"""Usage reports: spend, energy and carbon by group, with unit economics."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from reelfoundry.schema.cost import DecimalString


class UsageRow(BaseModel):
    """One group of cost records. Only the group keys asked for (``by``) appear."""

    model_config = ConfigDict(title="UsageRow", protected_namespaces=())

    tenant: str | None = None
    project: str | None = None
    campaign: str | None = None
    model: str | None = None
    device: str | None = None
    day: str | None = Field(None, description="UTC date, YYYY-MM-DD.")
    jobs: int = Field(..., description="Ended jobs: succeeded, failed and cancelled.")
    succeeded: int
    failed: int
    cancelled: int
    approved: int = Field(..., description="Of which the output is approved or published.")
    video_seconds: float = Field(..., description="Seconds of video delivered (succeeded jobs).")
    device_seconds: float
    idle_seconds: float
    compute_usd: DecimalString
    idle_usd: DecimalString
    storage_usd: DecimalString
    egress_usd: DecimalString
    total_usd: DecimalString
    energy_kwh: DecimalString
    co2e_kg: DecimalString
    cost_per_video_usd: DecimalString | None = Field(..., description="total / succeeded videos (all attempts in).")
    cost_per_video_second_usd: DecimalString | None = Field(..., description="total / seconds of video.")
    cost_per_approved_video_usd: DecimalString | None = Field(
        ..., description="total / approved videos (rejected and failed attempts counted in)."
    )


class UsageReport(BaseModel):
    """Answer of ``GET /v1/usage``."""

    model_config = ConfigDict(title="UsageReport", populate_by_name=True)

    by: list[str]
    start: datetime | None = Field(None, alias="from", description="Inclusive.")
    end: datetime | None = Field(None, alias="to", description="Exclusive.")
    rows: list[UsageRow]
