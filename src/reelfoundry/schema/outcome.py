"""Outcomes: what an asset or a campaign achieved (views, clicks, conversions, revenue) and what it cost to run.

The ROI model's performance lift and the KPI scorecard's cost per business outcome are measured from these.
Counts are not required to nest (conversions ≤ clicks ≤ views): view-through conversions follow a view with no
click, and channels count views and clicks differently.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from reelfoundry.schema.cost import DecimalString
from reelfoundry.schema.text import PRINTABLE, PROSE

#: The largest count one outcome may report (a trillion views is more than any campaign has had).
MAX_COUNT = 10**12
#: The largest revenue or spend one outcome may report, in US dollars.
MAX_USD = Decimal(10**10)

_MONEY_IN = "US dollars (up to 4 decimals), a JSON number or string."


class OutcomeCreate(BaseModel):
    """Body of ``POST /v1/outcomes``: name an asset, a campaign or both (an asset's campaign fills in when absent)."""

    model_config = ConfigDict(extra="forbid")

    asset_id: str | None = Field(None, min_length=1, max_length=64, description="The asset the outcome is for.")
    campaign: str | None = Field(None, min_length=1, max_length=128, pattern=PRINTABLE, description="Campaign name.")
    channel: str | None = Field(
        None, min_length=1, max_length=64, pattern=PRINTABLE, description="Where it ran (e.g. tiktok, web, email)."
    )
    views: int = Field(0, ge=0, le=MAX_COUNT)
    clicks: int = Field(0, ge=0, le=MAX_COUNT)
    conversions: int = Field(0, ge=0, le=MAX_COUNT, description="Purchases, sign-ups… (view-through ones included).")
    revenue_usd: Decimal = Field(
        Decimal(0), ge=0, le=MAX_USD, max_digits=16, decimal_places=4, description="Revenue attributed. " + _MONEY_IN
    )
    spend_usd: Decimal = Field(
        Decimal(0), ge=0, le=MAX_USD, max_digits=16, decimal_places=4, description="Media spend. " + _MONEY_IN
    )
    period_start: datetime | None = Field(None, description="Start of the period measured (with a timezone).")
    period_end: datetime | None = Field(None, description="End of the period measured; windows count outcomes by it.")
    note: str | None = Field(None, max_length=2000, pattern=PROSE)

    @field_validator("revenue_usd", "spend_usd")
    @classmethod
    def _no_negative_zero(cls, value: Decimal) -> Decimal:
        return value.copy_abs()  # "-0" passes ge=0 and would be echoed as "-0.0000"

    @field_validator("period_start", "period_end")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("needs a timezone (e.g. 2026-12-01T00:00:00Z)")
        try:  # stored as UTC: an offset can push year 1 or 9999 past datetime's range
            return value.astimezone(UTC)
        except OverflowError:
            raise ValueError("is out of range once converted to UTC") from None

    @model_validator(mode="after")
    def _subject(self) -> OutcomeCreate:
        if self.asset_id is None and self.campaign is None:
            raise ValueError("name an asset_id, a campaign or both")
        if self.period_start is not None and self.period_end is not None and self.period_start > self.period_end:
            raise ValueError("period_start must not be after period_end")
        return self


class Outcome(BaseModel):
    """One posted outcome. Money fields are exact decimal strings."""

    model_config = ConfigDict(title="Outcome")

    id: str
    tenant_id: str
    asset_id: str | None
    campaign: str | None
    channel: str | None
    views: int
    clicks: int
    conversions: int
    revenue_usd: DecimalString
    spend_usd: DecimalString
    period_start: datetime | None
    period_end: datetime | None
    at: datetime = Field(..., description="When it counts in a window: period_end, or when it was posted.")
    note: str | None
    created_by: str | None
    created_at: datetime


class OutcomeTotalsOut(BaseModel):
    """Sums over a set of outcomes."""

    records: int
    views: int
    clicks: int
    conversions: int
    revenue_usd: DecimalString
    spend_usd: DecimalString


class CampaignOutcomes(OutcomeTotalsOut):
    """One campaign's sums (campaign null: outcomes of assets without a campaign)."""

    campaign: str | None


class OutcomeSummary(BaseModel):
    """``GET /v1/outcomes/summary``: totals over the window and by campaign."""

    model_config = ConfigDict(title="OutcomeSummary")

    start: datetime | None
    end: datetime | None
    campaign: str | None = Field(None, description="The campaign filter, if one was given.")
    asset_id: str | None = Field(None, description="The asset filter, if one was given.")
    totals: OutcomeTotalsOut
    by_campaign: list[CampaignOutcomes] = Field(..., description="Largest revenue first.")
