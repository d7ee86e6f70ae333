"""Budgets: spending limits per tenant, project or campaign and period, hard or soft."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from reelfoundry.schema.cost import DecimalString
from reelfoundry.schema.text import PRINTABLE


class BudgetScope(StrEnum):
    """What a budget covers."""

    tenant = "tenant"
    project = "project"
    campaign = "campaign"


class BudgetPeriod(StrEnum):
    """When a budget's spend starts again from zero (UTC calendar periods; total never does)."""

    day = "day"
    week = "week"
    month = "month"
    total = "total"


class Enforcement(StrEnum):
    """hard: admission refuses a job the budget cannot cover (402). soft: the job runs; an event says so."""

    hard = "hard"
    soft = "soft"


class BudgetCreate(BaseModel):
    """Body of ``POST /v1/budgets``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, max_length=128, pattern=PRINTABLE)
    scope: BudgetScope = BudgetScope.tenant
    scope_value: str | None = Field(
        None, min_length=1, max_length=128, pattern=PRINTABLE, description="The project or campaign name."
    )
    period: BudgetPeriod = BudgetPeriod.month
    limit_usd: Decimal = Field(
        ...,
        gt=0,
        le=Decimal("900000000"),
        max_digits=20,
        decimal_places=10,
        description="US dollars (up to 10 decimals).",
    )
    enforcement: Enforcement = Enforcement.hard

    @model_validator(mode="after")
    def _scope(self) -> BudgetCreate:
        if self.scope == BudgetScope.tenant and self.scope_value is not None:
            raise ValueError("scope_value is only for project or campaign budgets")
        if self.scope != BudgetScope.tenant and self.scope_value is None:
            raise ValueError(f"a {self.scope.value} budget names its {self.scope.value} in scope_value")
        return self


class Budget(BaseModel):
    """A budget and where it stands in its current period."""

    model_config = ConfigDict(title="Budget")

    id: str
    tenant_id: str
    name: str
    scope: BudgetScope
    scope_value: str | None
    period: BudgetPeriod
    enforcement: Enforcement
    limit_usd: DecimalString
    period_start: datetime | None = Field(None, description="Start of the current period (none for total).")
    spent_usd: DecimalString = Field(..., description="Cost records of ended jobs in the period.")
    reserved_usd: DecimalString = Field(..., description="Estimates of queued and running jobs in the period.")
    remaining_usd: DecimalString = Field(..., description="limit − spent − reserved (negative once overrun).")
    created_at: datetime
