"""``reelfoundry plan report``: GIM, TCO, E-TCO and ROI for one scenario in one self-contained HTML file.

Charts are PNGs drawn here with matplotlib and embedded as ``data:`` URIs; the page has no scripts and loads
nothing from anywhere, so it can be mailed, archived or opened offline. The figures are the same as the
commands' ``--json`` (the report renders those documents), with their provenance.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import jinja2

from reelfoundry import __version__
from reelfoundry.planning.charts import png_bytes
from reelfoundry.planning.gim import DRIVERS, LABELS, GimResult
from reelfoundry.planning.scenario import Scenario
from reelfoundry.planning.tco import Measured


def gim_chart(result: GimResult) -> bytes:
    """Each option's five driver scores as grouped bars, and its weighted total as a marker (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.2), dpi=100)
    options = [o.option for o in result.ranking]
    width = 0.8 / len(DRIVERS)
    for j, driver in enumerate(DRIVERS):
        xs = [i + (j - (len(DRIVERS) - 1) / 2) * width for i in range(len(options))]
        heights = [o.drivers[driver].score for o in result.ranking]
        ax.bar(xs, heights, width=width, label=f"{driver} (×{result.weights[driver]:.2f})")
    ax.plot(range(len(options)), [o.score for o in result.ranking], "kD", markersize=9, label="weighted score")
    ax.set_xticks(range(len(options)), [LABELS[o].split(":")[0] for o in options], fontsize=8)
    ax.set_ylim(0, 10.5)
    ax.set_ylabel("score (0–10)")
    ax.set_title(f"GIM — {result.scenario}")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return png_bytes(fig)


def etco_chart(tco: dict[str, Any]) -> bytes:
    """Energy (kWh) and carbon (kg CO2e) per video of the cheapest option of each deployment (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    best: dict[str, dict[str, Any]] = {}
    for option in tco["options"]:
        kind = option.get("deployment") or option["id"]
        if kind not in best or option["total_usd"] < best[kind]["total_usd"]:
            best[kind] = option
    names = sorted(best)
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6), dpi=100)
    left.barh(names, [best[n]["energy_kwh_per_video"] for n in names], color="#f59e0b")
    left.set_xlabel("kWh per video")
    right.barh(names, [best[n]["co2e_kg_per_video"] for n in names], color="#64748b")
    right.set_xlabel("kg CO2e per video")
    right.set_yticks([])
    fig.suptitle("E-TCO: energy and carbon per video (cheapest option of each kind)")
    fig.tight_layout()
    return png_bytes(fig)


def _figure_value(figure: dict[str, Any] | None) -> float | None:
    value = (figure or {}).get("value")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def roi_chart(roi: dict[str, Any]) -> bytes | None:
    """Baseline against AI campaign on the performance figures both have, and the cost of a video without
    and with AI (PNG); None when there is nothing to compare."""
    panels: list[tuple[str, list[str], list[float]]] = []
    perf = roi.get("performance") or {}
    base, ai = (perf.get("baseline") or {}).get("figures", {}), (perf.get("ai") or {}).get("figures", {})
    for name, title in (
        ("cost_per_view_usd", "cost per view (US$)"),
        ("conversion_rate", "conversion rate (%)"),
        ("cost_per_conversion_usd", "cost per conversion (US$)"),
    ):
        b, a = _figure_value(base.get(name)), _figure_value(ai.get(name))
        if b is not None and a is not None:
            scale = 100.0 if name == "conversion_rate" else 1.0
            labels = [perf["baseline"].get("label") or "baseline", perf["ai"].get("label") or "AI"]
            panels.append((title, labels, [b * scale, a * scale]))
    eff = (roi.get("efficiency") or {}).get("figures", {})
    without, with_ai = (
        _figure_value(eff.get("cost_per_video_without_ai_usd")),
        _figure_value(eff.get("cost_per_video_with_ai_usd")),
    )
    if without is not None and with_ai is not None:
        panels.append(("cost of one video (US$)", ["without AI", "with AI"], [without, with_ai]))
    if not panels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels) + 1, 3.4), dpi=100, squeeze=False)
    for ax, (title, labels, values) in zip(axes[0], panels, strict=True):
        ax.bar(range(2), values, color=["#94a3b8", "#16a34a"])
        ax.set_xticks(range(2), [label[:22] for label in labels], fontsize=7)
        ax.set_title(title, fontsize=9)
        for i, v in enumerate(values):
            ax.annotate(f"{v:,.3g}", (i, v), ha="center", va="bottom", fontsize=8)
    fig.suptitle("ROI: performance lift and efficiency")
    fig.tight_layout()
    return png_bytes(fig)


def _figure_text(figure: Any, signed: bool = False) -> str:
    """A ROI figure ({value, unit, provenance…}) as people read it: $1,500.00, 1.50 %, 12 hours."""
    if not isinstance(figure, dict):
        return _number(figure)
    value, unit = figure.get("value"), str(figure.get("unit") or "")
    if value is None:
        return "—"
    if unit in ("usd", "USD"):
        return f"${value:,.2f}" if abs(value) >= 0.01 or value == 0 else f"${value:.4g}"
    if unit == "fraction":
        return f"{value * 100:+,.1f} %" if signed else f"{value * 100:,.2f} %"
    if isinstance(value, int | float) and float(value).is_integer():
        return f"{value:,.0f} {unit}".strip()
    return f"{_number(value)} {unit}".strip()


def _figure_source(figure: Any) -> str:
    if not isinstance(figure, dict):
        return ""
    parts = [str(figure.get("provenance") or "")]
    for key in ("formula", "why"):
        if figure.get(key):
            parts.append(str(figure[key]))
    if figure.get("source"):
        parts.append(f"{figure['source']} ({figure.get('as_of', '')})")
    return ": ".join(parts[:2]) + ("; " + "; ".join(parts[2:]) if len(parts) > 2 else "")


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def _number(value: Any, digits: int = 2) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "" if value is None else str(value)
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if value == 0 or abs(value) >= 1:
        return f"{value:,.{digits}f}"
    return f"{value:.4g}"


def render(
    scenario: Scenario,
    gim: GimResult,
    tco: dict[str, Any],
    roi: dict[str, Any] | None,
    charts: dict[str, bytes],
) -> str:
    """The report as one HTML string."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("reelfoundry.planning", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["num"] = _number
    env.filters["data_uri"] = _data_uri
    env.filters["fig"] = _figure_text
    env.filters["src"] = _figure_source
    return env.get_template("report.html").render(
        scenario=scenario.model_dump(mode="json"),
        gim=gim.to_json(),
        tco=tco,
        roi=roi,
        charts=charts,
        drivers=DRIVERS,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        version=__version__,
    )


def build(scenario: Scenario, measured: Measured | None = None) -> str:
    """Run GIM, TCO (with E-TCO) and, when the scenario has ``roi`` inputs, ROI; render them with charts."""
    from reelfoundry.planning import gim as gim_model
    from reelfoundry.planning import roi as roi_model
    from reelfoundry.planning import tco as tco_model

    tco_result = tco_model.compute(scenario, measured=measured)
    tco_json = tco_result.to_json()
    gim_result = gim_model.evaluate(scenario, measured)
    roi_json = roi_model.compute(scenario).to_json() if scenario.roi is not None else None
    charts = {
        "gim": gim_chart(gim_result),
        "tco": tco_model.cost_volume_chart(tco_result),
        "etco": etco_chart(tco_json),
    }
    roi_png = roi_chart(roi_json) if roi_json is not None else None
    if roi_png is not None:
        charts["roi"] = roi_png
    return render(scenario, gim_result, tco_json, roi_json, charts)
