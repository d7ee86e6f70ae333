"""Planning charts as PNG bytes (matplotlib, Agg backend): reports embed them as base64, the CLI writes files."""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reelfoundry.planning.scenario import Scenario
    from reelfoundry.planning.tco import TcoResult

#: Points on the volume axis (log-spaced).
POINTS = 60
#: The volume axis spans at least 10 to 10 million videos a month, and two decades either side of the scenario.
MIN_VOLUME, MAX_VOLUME = 10.0, 10_000_000.0
STYLE = {
    "on_premise": ("#1d4ed8", "-"),
    "specialised_cloud_vpc": ("#059669", "-"),
    "hyperscaler_cloud": ("#d97706", "--"),
    "public_cloud_api": ("#dc2626", "-"),
    "hybrid": ("#7c3aed", "-."),
    "this_platform": ("#111827", ":"),
}


def png_bytes(fig: Any) -> bytes:
    """A matplotlib figure as PNG bytes (the figure is closed)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def volumes(center: float) -> list[float]:
    """Log-spaced monthly volumes around ``center``."""
    low = min(MIN_VOLUME, max(1.0, center / 100))
    high = max(MAX_VOLUME, center * 100)
    step = (math.log10(high) - math.log10(low)) / (POINTS - 1)
    return [10 ** (math.log10(low) + i * step) for i in range(POINTS)]


def cost_volume_chart(result_or_scenario: TcoResult | Scenario) -> bytes:
    """Monthly cost of the cheapest option of each deployment against a steady monthly volume (log–log), the
    scenario's volume marked, as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from reelfoundry.planning import tco

    result = result_or_scenario if isinstance(result_or_scenario, tco.TcoResult) else tco.compute(result_or_scenario)
    xs = volumes(float(result.scenario.volume_per_month))
    curves: dict[str, list[float]] = {}
    for x in xs:
        options = tco.price_options(result.scenario, result.catalog, result.inputs, [x], result.measured)
        best: dict[str, float] = {}
        for option in options:
            cost = float(option.total)
            best[option.deployment] = min(cost, best.get(option.deployment, math.inf))
        for deployment, cost in best.items():
            curves.setdefault(deployment, []).append(max(cost, 0.01))
    fig, ax = plt.subplots(figsize=(9, 4.8), dpi=100)
    for deployment, ys in curves.items():
        colour, line = STYLE.get(deployment, ("#6b7280", "-"))
        ax.plot(xs[: len(ys)], ys, line, color=colour, label=deployment, linewidth=1.8)
    volume = result.scenario.volume_per_month
    if volume > 0:  # a log axis has no place for 0
        ax.axvline(volume, color="#374151", linewidth=1, linestyle=":")
        ax.annotate(
            f"scenario: {volume:,} videos/month",
            (volume, 0.98),
            xycoords=("data", "axes fraction"),
            rotation=90,
            va="top",
            ha="right",
            fontsize="small",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("videos a month (steady volume)")
    ax.set_ylabel("US dollars a month (cheapest option of each kind)")
    ax.set_title(f"Cost against volume — {result.scenario.name} ({result.inputs.device}, {result.catalog.version})")
    ax.grid(which="major", alpha=0.3)
    ax.legend(fontsize="small", loc="upper left")
    fig.tight_layout()
    return png_bytes(fig)
