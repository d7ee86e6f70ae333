"""Spend over time, one stacked bar per day split by a group (``reelfoundry usage --chart``)."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any


def spend_chart(rows: list[dict[str, Any]], group: str, out: Path, title: str = "Spend per day") -> None:
    """Draw rows grouped by (``group``, day) as stacked daily bars of total_usd, one colour per group value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    days = sorted({r["day"] for r in rows})
    by_value: dict[str, dict[str, Decimal]] = defaultdict(dict)
    for r in rows:
        by_value[str(r.get(group) or "(none)")][r["day"]] = Decimal(str(r["total_usd"]))
    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=100)
    bottom = [0.0] * len(days)
    for value in sorted(by_value, key=lambda v: -sum(by_value[v].values())):
        heights = [float(by_value[value].get(d, 0)) for d in days]
        ax.bar(days, heights, bottom=bottom, label=value)
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    ax.set_title(f"{title} by {group}")
    ax.set_xlabel("day (UTC)")
    ax.set_ylabel("US dollars")
    ax.legend(title=group, fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.tick_params(axis="x", labelrotation=45)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    tmp = out.with_name(out.name + ".part.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(out)
