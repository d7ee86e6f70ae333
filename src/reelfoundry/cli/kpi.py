"""``reelfoundry kpi``: the KPI scorecard, from the server or (when none answers) the data dir's database."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer

from reelfoundry.cli.client import CLIError
from reelfoundry.cli.common import (
    AsJson,
    check_output,
    common_options,
    print_json,
    server_or_database,
    table,
    write_output,
)

#: The KPIs in the order the table shows them.
FIGURES = (
    "gpu_utilization",
    "queue_wait_s",
    "cost_per_inference_usd",
    "innovation_velocity",
    "model_agility",
    "data_asset_leverage",
    "cost_per_business_outcome_usd",
    "approval_rate",
    "energy_kwh_per_video",
    "co2e_kg_per_video",
)


@common_options()
def kpi(
    start: Annotated[str | None, typer.Option("--from", help="Start date (YYYY-MM-DD) or datetime.")] = None,
    end: Annotated[str | None, typer.Option("--to", help="End date (inclusive) or datetime.")] = None,
    chart: Annotated[
        Path | None, typer.Option("--chart", help="Draw the trend charts into one PNG (or SVG: a .svg name).")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """The KPI scorecard: GPU utilisation, queue wait p50/p95, cost per inference, innovation velocity, model
    agility, data asset leverage, cost per business outcome, approval rate, energy and CO2e per video. Reads
    the server, or the data dir directly when no server answers there (then every tenant)."""
    from reelfoundry.finops import usage as report

    if chart is not None:
        check_output(chart, "--chart")
    span = report.parse_when("from", start, end=False), report.parse_when("to", end, end=True)
    if span[0] is not None and span[1] is not None and span[0] >= span[1]:
        raise CLIError("--to must be after --from")
    params = {k: v for k, v in {"from": start, "to": end}.items() if v}
    card = _scorecard(params, *span)
    if chart is not None:
        from reelfoundry.kpi.charts import dashboard
        from reelfoundry.schema import Scorecard

        data = dashboard(Scorecard.model_validate(card), "svg" if chart.suffix.lower() == ".svg" else "png")
        write_output(chart, data)
    if as_json:
        print_json(card)
        return
    table([_row(name, card[name]) for name in FIGURES], ["kpi", "value", "unit", "n", "note"], _title(card))


def _title(card: dict[str, Any]) -> str:
    start, end = card.get("from"), card.get("to")
    window = f"{start or 'the beginning'} to {end or 'now'}"
    return f"KPI scorecard, {window} (measured; --json for definitions)"


def _row(name: str, figure: dict[str, Any]) -> dict[str, Any]:
    from reelfoundry.finops.meter import significant

    value = figure.get("value")
    shown = "n/a" if value is None else significant(Decimal(str(value)), 4)
    note = figure.get("reason") or ""
    if name == "queue_wait_s" and figure.get("available"):
        note = f"p50 {figure['p50_s']} s, p95 {figure['p95_s']} s"
    elif name == "cost_per_inference_usd" and figure.get("per_succeeded_video_usd") is not None:
        note = f"per succeeded video {significant(Decimal(figure['per_succeeded_video_usd']), 4)} USD"
    elif name == "gpu_utilization" and figure.get("devices"):
        note = "devices: " + ", ".join(d["device"] for d in figure["devices"])
    return {"kpi": name, "value": shown, "unit": figure["unit"], "n": figure["n"], "note": note}


def _scorecard(params: dict[str, str], start: Any, end: Any) -> dict[str, Any]:
    """The scorecard from the server, or from the data dir's database when no server answers."""
    from reelfoundry.kpi import scorecard
    from reelfoundry.store.tables import utcnow

    def local(session: Any) -> dict[str, Any]:
        return scorecard(session, None, start, end, utcnow()).model_dump(mode="json", by_alias=True)

    return dict(server_or_database("/v1/kpi", params, local))
