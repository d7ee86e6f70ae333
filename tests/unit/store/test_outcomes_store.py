"""store.outcomes: exact sums over a window (by a period's end, or when posted), per campaign and tenant, on
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from reelfoundry.schema.outcome import OutcomeCreate
from reelfoundry.store import Database
from reelfoundry.store import outcomes as outcomestore

MARCH = datetime(2026, 3, 1, tzinfo=UTC)
APRIL = datetime(2026, 4, 1, tzinfo=UTC)


def _post(database: Database, tenant_id: str, campaign: str | None, **body: Any) -> None:
    with database.write() as session:
        data = OutcomeCreate(campaign=campaign or "placeholder", **body)
        outcomestore.create(session, tenant_id, data, campaign=campaign, actor=None)


def test_totals_window_campaigns_and_tenants(database: Database, tenant_ids: tuple[str, str]) -> None:
    a, b = tenant_ids
    _post(database, a, "spring", views=100, clicks=10, conversions=3, revenue_usd="10.0001", spend_usd="1.5",
          period_end=datetime(2026, 3, 31, 23, 59, tzinfo=UTC))  # fmt: skip
    _post(database, a, "spring", views=50, conversions=1, revenue_usd="0.9999", period_end=MARCH)
    _post(database, a, None, views=7, spend_usd="2", period_end=datetime(2026, 3, 15, tzinfo=UTC))
    _post(database, a, "spring", views=1000, period_end=APRIL)  # the window's end is exclusive
    _post(database, b, "spring", views=5, revenue_usd="5", period_end=datetime(2026, 3, 2, tzinfo=UTC))
    # Money near the per-outcome cap sums exactly and without overflowing (3 × $10bn in 1e-4 units ≈ 3e14).
    for _ in range(3):
        _post(database, b, "big", revenue_usd="10000000000", period_end=datetime(2026, 3, 3, tzinfo=UTC))

    with database.read() as session:
        march = outcomestore.totals(session, a, MARCH, APRIL)
        spring = outcomestore.totals(session, a, MARCH, APRIL, campaign="spring")
        every = outcomestore.totals(session, None, MARCH, APRIL)
        by = outcomestore.totals_by_campaign(session, a, MARCH, APRIL)
        all_time = outcomestore.totals(session, a)
        none = outcomestore.totals(session, a, APRIL, campaign="nothing")
    # 100 + 50 + 7 = 157 views; revenue 10.0001 + 0.9999 = 11.0000; spend 1.5 + 2 = 3.5
    assert march == outcomestore.OutcomeTotals(3, 157, 10, 4, Decimal("11.0000"), Decimal("3.5000"))
    assert spring == outcomestore.OutcomeTotals(2, 150, 10, 4, Decimal("11.0000"), Decimal("1.5000"))
    assert by == {
        "spring": spring,
        outcomestore.NO_CAMPAIGN: outcomestore.OutcomeTotals(1, 7, 0, 0, Decimal(0), Decimal(2)),
    }
    assert all_time.views == 1157 and all_time.records == 4
    # Every tenant: a's 157 + b's 5; revenue 11 + 5 + 30,000,000,000.
    assert every.views == 162 and every.records == 7 and every.revenue_usd == Decimal("30000000016.0000")
    assert none == outcomestore.OutcomeTotals() and none.to_json()["revenue_usd"] == "0.0000"


def test_money_sums_past_64_bits_of_units_stay_exact(database: Database, tenant_ids: tuple[str, str]) -> None:
    """92,234 posts at the $10bn cap add up to more than 2**63 units of 1e-4 dollars: SQLite's sum() refuses
    that ("integer overflow": every summary, the operator's included, a 500). Two rows of that size stand in."""
    a, _ = tenant_ids
    huge = Decimal("600000000000000.0001")  # 6e18 units each: two of them pass 2**63 - 1 ≈ 9.22e18
    with database.write() as session:
        for _ in range(2):
            row = outcomestore.create(session, a, OutcomeCreate(campaign="big"), campaign="big", actor=None)
            row.revenue_usd = row.spend_usd = huge
    with database.read() as session:
        total = outcomestore.totals(session, a)
        by = outcomestore.totals_by_campaign(session, a)
    assert total.revenue_usd == total.spend_usd == Decimal("1200000000000000.0002")
    assert by["big"].revenue_usd == Decimal("1200000000000000.0002")
