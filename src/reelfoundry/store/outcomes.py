"""Outcomes posted per asset or campaign, and their sums over a window (the ROI model's and the KPI's input).

A window ``[start, end)`` selects outcomes by ``at``: the end of the period they measure, or when they were
posted if they name no period. ``tenant_id=None`` sums every tenant (for the operator).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import BigInteger, ColumnElement, Select, func, select, type_coerce
from sqlalchemy.orm import Session

from reelfoundry.ids import new_id
from reelfoundry.schema.outcome import CampaignOutcomes, Outcome, OutcomeCreate, OutcomeSummary, OutcomeTotalsOut
from reelfoundry.store.pagination import page_of, paginate
from reelfoundry.store.tables import OutcomeRow, utcnow

_S = TypeVar("_S", bound=Select[*tuple[Any, ...]])

#: Campaign key in :func:`totals_by_campaign` for outcomes that name no campaign (assets without one).
NO_CAMPAIGN = ""
#: Outcome money is kept to 1e-4 dollars (``tables.OUTCOME_MONEY``): a posted row reads back as it will be stored.
_UNIT = Decimal("0.0001")
_ZERO = Decimal("0.0000")


@dataclass(frozen=True)
class OutcomeTotals:
    """Sums over a set of outcomes."""

    records: int = 0
    views: int = 0
    clicks: int = 0
    conversions: int = 0
    revenue_usd: Decimal = _ZERO
    spend_usd: Decimal = _ZERO

    def to_json(self) -> dict[str, Any]:
        """Counts as numbers, money as exact decimal strings."""
        return {
            "records": self.records,
            "views": self.views,
            "clicks": self.clicks,
            "conversions": self.conversions,
            "revenue_usd": format(self.revenue_usd, "f"),
            "spend_usd": format(self.spend_usd, "f"),
        }


def create(
    session: Session, tenant_id: str, body: OutcomeCreate, *, campaign: str | None, actor: str | None
) -> OutcomeRow:
    """Record an outcome (the caller has checked the asset belongs to the tenant and resolved the campaign)."""
    now = utcnow()
    row = OutcomeRow(
        id=new_id(),
        tenant_id=tenant_id,
        asset_id=body.asset_id,
        campaign=campaign,
        channel=body.channel,
        views=body.views,
        clicks=body.clicks,
        conversions=body.conversions,
        revenue_usd=body.revenue_usd.quantize(_UNIT),
        spend_usd=body.spend_usd.quantize(_UNIT),
        period_start=body.period_start,
        period_end=body.period_end,
        at=body.period_end or now,
        note=body.note,
        created_by=actor,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row


def _window(
    stmt: _S,
    tenant_id: str | None,
    start: datetime | None,
    end: datetime | None,
    campaign: str | None,
    asset_id: str | None = None,
) -> _S:
    if tenant_id is not None:
        stmt = stmt.where(OutcomeRow.tenant_id == tenant_id)
    if campaign is not None:
        stmt = stmt.where(OutcomeRow.campaign == campaign)
    if asset_id is not None:
        stmt = stmt.where(OutcomeRow.asset_id == asset_id)
    if start is not None:
        stmt = stmt.where(OutcomeRow.at >= start)
    if end is not None:
        stmt = stmt.where(OutcomeRow.at < end)
    return stmt


def list_outcomes(
    session: Session,
    tenant_id: str,
    *,
    asset_id: str | None = None,
    campaign: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[OutcomeRow], str | None]:
    """A page of the tenant's outcomes, newest first, filtered by asset, campaign and window."""
    stmt = _window(select(OutcomeRow), tenant_id, start, end, campaign, asset_id)
    return page_of(list(session.scalars(paginate(stmt, OutcomeRow.id, cursor, limit))), limit)


#: Units of ``_UNIT`` in a dollar.
_PER_DOLLAR = 10**4


def _money_sums(column: Any) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    """Σ whole dollars and Σ the 1e-4 remainders of a money column: one sum of the stored units passes 2**63
    after 92,234 outcomes at the $10bn cap, and SQLite's sum() then fails ("integer overflow") where
    PostgreSQL's widens to numeric; these two stay inside 64 bits for billions of rows, and add up exactly."""
    units = type_coerce(column, BigInteger)
    return func.sum(units // _PER_DOLLAR), func.sum(units % _PER_DOLLAR)


_SUMS = (
    func.count(OutcomeRow.id),
    func.sum(OutcomeRow.views),
    func.sum(OutcomeRow.clicks),
    func.sum(OutcomeRow.conversions),
    *_money_sums(OutcomeRow.revenue_usd),
    *_money_sums(OutcomeRow.spend_usd),
)


def _usd(dollars: Any, units: Any) -> Decimal:
    if dollars is None:
        return _ZERO
    return (Decimal(int(dollars)) + Decimal(int(units)) * _UNIT).quantize(_UNIT)


def _totals(values: Any) -> OutcomeTotals:
    records, views, clicks, conversions, revenue, revenue_units, spend, spend_units = values
    return OutcomeTotals(
        records=int(records or 0),
        views=int(views or 0),
        clicks=int(clicks or 0),
        conversions=int(conversions or 0),
        revenue_usd=_usd(revenue, revenue_units),
        spend_usd=_usd(spend, spend_units),
    )


def totals(
    session: Session,
    tenant_id: str | None,
    start: datetime | None = None,
    end: datetime | None = None,
    campaign: str | None = None,
    asset_id: str | None = None,
) -> OutcomeTotals:
    """Sums of the outcomes in the window (of one campaign or asset, if named); zeros when there are none."""
    return _totals(session.execute(_window(select(*_SUMS), tenant_id, start, end, campaign, asset_id)).one())


def totals_by_campaign(
    session: Session,
    tenant_id: str | None,
    start: datetime | None = None,
    end: datetime | None = None,
    campaign: str | None = None,
    asset_id: str | None = None,
) -> dict[str, OutcomeTotals]:
    """Sums per campaign in the window; outcomes without a campaign under :data:`NO_CAMPAIGN`."""
    stmt = _window(select(OutcomeRow.campaign, *_SUMS), tenant_id, start, end, campaign, asset_id)
    stmt = stmt.group_by(OutcomeRow.campaign)
    out: dict[str, OutcomeTotals] = {}
    for campaign, *values in session.execute(stmt):
        key = campaign if campaign is not None else NO_CAMPAIGN
        out[key] = _totals(values)
    return out


def summary(
    session: Session,
    tenant_id: str | None,
    start: datetime | None = None,
    end: datetime | None = None,
    campaign: str | None = None,
    asset_id: str | None = None,
) -> OutcomeSummary:
    """``GET /v1/outcomes/summary``: the totals in the window (of one campaign or asset, if named) and the same
    per campaign, largest revenue first (campaign None: outcomes of assets without one)."""
    total = totals(session, tenant_id, start, end, campaign, asset_id)
    by = totals_by_campaign(session, tenant_id, start, end, campaign, asset_id)
    ordered = sorted(by.items(), key=lambda kv: (-kv[1].revenue_usd, kv[0]))
    return OutcomeSummary(
        start=start,
        end=end,
        campaign=campaign,
        asset_id=asset_id,
        totals=OutcomeTotalsOut(**asdict(total)),
        by_campaign=[CampaignOutcomes(campaign=k if k != NO_CAMPAIGN else None, **asdict(v)) for k, v in ordered],
    )


def to_outcome(row: OutcomeRow) -> Outcome:
    """The API form of a row."""
    return Outcome(
        id=row.id,
        tenant_id=row.tenant_id,
        asset_id=row.asset_id,
        campaign=row.campaign,
        channel=row.channel,
        views=row.views,
        clicks=row.clicks,
        conversions=row.conversions,
        revenue_usd=row.revenue_usd,
        spend_usd=row.spend_usd,
        period_start=row.period_start,
        period_end=row.period_end,
        at=row.at,
        note=row.note,
        created_by=row.created_by,
        created_at=row.created_at,
    )
