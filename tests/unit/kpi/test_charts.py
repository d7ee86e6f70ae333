"""The scorecard's trend charts: days on a date axis, so gaps keep their length and a year draws a few ticks."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from reelfoundry.kpi.charts import CHARTS, _draw
from reelfoundry.schema.kpi import Trend, TrendPoint


def _axes_with(days: list[str]) -> object:
    from matplotlib.figure import Figure

    trend = Trend(name="queue_wait_p50_s", unit="s", points=[TrendPoint(day=d, value=Decimal(1), n=1) for d in days])
    ax = Figure().add_subplot()
    _draw(ax, [trend], CHARTS["queue_wait"])
    return ax


def test_days_are_dates_so_a_gap_keeps_its_length() -> None:
    ax = _axes_with(["2026-11-01", "2026-11-02", "2026-11-30"])
    (line,) = ax.get_lines()  # type: ignore[attr-defined]
    # As category labels the three days sat evenly spaced, hiding the four weeks without data.
    x = [float(v) for v in line.get_xdata()]
    assert (x[1] - x[0], x[2] - x[1]) == (1.0, 28.0)


def test_a_year_of_days_draws_a_handful_of_ticks() -> None:
    days = [(date(2025, 12, 1) + timedelta(days=i)).isoformat() for i in range(366)]
    ax = _axes_with(days)
    assert 2 <= len(ax.get_xticks()) <= 12  # type: ignore[attr-defined]  # was one label per day: 366
