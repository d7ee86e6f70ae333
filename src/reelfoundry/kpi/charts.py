"""Trend charts of a scorecard, drawn on the server or in the CLI with matplotlib (SVG or PNG bytes; no scripts,
nothing fetched at run time).

Figures are made with matplotlib's object API (``Figure``), never pyplot's global state, so concurrent requests
each draw their own.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from reelfoundry.schema.kpi import Scorecard, Trend

Format = Literal["svg", "png"]


@dataclass(frozen=True)
class ChartSpec:
    """One chart: its title, y label, the trends it draws and how a value is scaled for the axis."""

    title: str
    ylabel: str
    series: tuple[str, ...]
    scale: float = 1.0


#: The dashboard's charts, by the name in ``/ui/kpi/charts/<name>.svg``.
CHARTS: dict[str, ChartSpec] = {
    "gpu_utilization": ChartSpec("GPU utilisation per day", "busy share of device time (%)", ("gpu_utilization",), 100),
    "queue_wait": ChartSpec("Queue wait per day", "seconds", ("queue_wait_p50_s", "queue_wait_p95_s")),
    "cost_per_inference": ChartSpec("Cost per inference per day", "US dollars", ("cost_per_inference_usd",)),
    "approval_rate": ChartSpec("Approval rate per day", "approved of decided (%)", ("approval_rate",), 100),
    "energy_per_video": ChartSpec("Energy per video per day", "Wh", ("energy_kwh_per_video",), 1000),
}

_LABELS = {"queue_wait_p50_s": "p50", "queue_wait_p95_s": "p95"}


def _trend(card: Scorecard | list[Trend], name: str) -> Trend | None:
    series = card.trends if isinstance(card, Scorecard) else card
    return next((t for t in series if t.name == name), None)


def _draw(ax: object, card: Scorecard | list[Trend], spec: ChartSpec) -> None:
    from matplotlib import dates as mdates
    from matplotlib.axes import Axes

    assert isinstance(ax, Axes)
    drawn = 0
    span: list[date] = []
    for name in spec.series:
        trend = _trend(card, name)
        points = [p for p in (trend.points if trend else []) if p.value is not None]
        if not points:
            continue
        # Dates, not category labels: days without data keep their width, and the axis labels a few of them
        # (366 labels made each chart a 460 KB SVG that took a second of CPU to draw).
        days = [date.fromisoformat(p.day) for p in points]
        span += [days[0], days[-1]]
        values = [float(p.value) * spec.scale for p in points if p.value is not None]
        ax.plot(mdates.date2num(days), values, marker="o", label=_LABELS.get(name, name))
        drawn += 1
    ax.set_title(spec.title)
    if not drawn:
        ax.text(0.5, 0.5, "no data yet", ha="center", va="center", transform=ax.transAxes, color="#6b7280")
        ax.set_xticks([])
        ax.set_yticks([])
        return
    # One day is a range too: a day's margin either side.
    ax.set_xlim(
        float(mdates.date2num(min(span) - timedelta(days=1))), float(mdates.date2num(max(span) + timedelta(days=1)))
    )
    locator = mdates.AutoDateLocator(maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.set_xlabel("day (UTC)")
    ax.set_ylabel(spec.ylabel)
    ax.set_ylim(bottom=0)
    ax.tick_params(axis="x", labelrotation=45, labelsize="small")
    ax.grid(axis="y", alpha=0.3)
    if len(spec.series) > 1:
        ax.legend(fontsize="small")


def _save(fig: object, fmt: Format) -> bytes:
    from matplotlib.figure import Figure

    assert isinstance(fig, Figure)
    buf = io.BytesIO()
    # No date in the SVG's metadata, so the same scorecard draws the same bytes.
    metadata = {"Date": None} if fmt == "svg" else {}
    fig.savefig(buf, format=fmt, metadata=metadata)
    return buf.getvalue()


def chart(card: Scorecard | list[Trend], name: str, fmt: Format = "svg") -> bytes:
    """One of :data:`CHARTS` as SVG or PNG bytes ("no data yet" drawn when its trend is empty), from a scorecard
    or its trends alone. KeyError for an unknown name."""
    from matplotlib.figure import Figure

    spec = CHARTS[name]
    fig = Figure(figsize=(6, 3.4), dpi=100, layout="tight")
    _draw(fig.add_subplot(), card, spec)
    return _save(fig, fmt)


def dashboard(card: Scorecard, fmt: Format = "png") -> bytes:
    """Every chart of :data:`CHARTS` on one figure (``reelfoundry kpi --chart``)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 10), dpi=100, layout="tight")
    axes = fig.subplots(3, 2).flatten()
    for ax, spec in zip(axes, CHARTS.values(), strict=False):
        _draw(ax, card, spec)
    axes[-1].set_axis_off()
    return _save(fig, fmt)
