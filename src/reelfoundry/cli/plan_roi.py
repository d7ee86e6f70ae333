"""``reelfoundry plan roi``: the three-pillar ROI model (efficiency, performance lift, strategic value) of a
scenario, with campaigns measured from posted outcomes where the scenario names them."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from reelfoundry.cli.client import CLIError
from reelfoundry.cli.common import AsJson, common_options, console, out, print_json
from reelfoundry.cli.plan import ScenarioArg, scenario_from

if TYPE_CHECKING:
    from reelfoundry.planning.scenario import Scenario
    from reelfoundry.store.outcomes import OutcomeTotals


@common_options()
def roi(
    scenario: ScenarioArg,
    start: Annotated[
        str | None, typer.Option("--from", help="Measured campaigns: outcomes from this date (YYYY-MM-DD) on.")
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="Measured campaigns: outcomes up to this date.")] = None,
    as_json: AsJson = False,
) -> None:
    """Efficiency gains (hours and production cost saved per video and per month, net of the AI cost),
    performance lift (a baseline campaign against one made with generated video: cost per view, click and
    conversion, conversion rate, revenue, ROAS) and strategic value (scored factors). A campaign that names
    `campaign:` is measured from the outcomes posted for it (the server, else the data dir). Every figure says
    where it came from: scenario, measured, catalog or derived."""
    from reelfoundry.planning import roi as model

    facts = scenario_from(scenario)
    result = model.compute(facts, measured=measure(facts, start, end))
    data = result.to_json()
    if as_json:
        print_json(data)
    else:
        show(data)


def measure(scenario: Scenario, start: str | None = None, end: str | None = None) -> dict[str, OutcomeTotals]:
    """Totals of the outcomes posted for each campaign or asset the scenario's ``roi`` names; with neither a
    server nor a database to read, a note on stderr and nothing measured (the scenario's own figures are used)."""
    from reelfoundry.cli.outcomes import summary_of
    from reelfoundry.planning.roi import measured_targets
    from reelfoundry.store.outcomes import OutcomeTotals

    found: dict[str, OutcomeTotals] = {}
    for name, target in measured_targets(scenario).items():
        try:
            totals = summary_of(target.campaign, start, end, target.asset)["totals"]
        except CLIError as exc:
            if exc.exit_code != 1 or "no server" not in exc.detail:
                raise
            console.print(f"[yellow]not measured:[/yellow] {exc.detail}", highlight=False)
            return {}
        found[name] = OutcomeTotals(
            records=int(totals["records"]),
            views=int(totals["views"]),
            clicks=int(totals["clicks"]),
            conversions=int(totals["conversions"]),
            revenue_usd=Decimal(str(totals["revenue_usd"])),
            spend_usd=Decimal(str(totals["spend_usd"])),
        )
    return found


def _value(fig: dict[str, Any], change: bool = False) -> str:
    value, unit = fig["value"], fig["unit"]
    if value is None:
        return "—"
    if unit == "fraction":
        return f"{value * 100:+,.1f} %" if change else f"{value * 100:,.2f} %"
    if unit.startswith("usd"):
        money = f"${value:,.2f}" if abs(value) >= 0.1 or value == 0 else f"${value:,.4f}"
        return money + str(unit).removeprefix("usd")
    suffix = "" if unit in ("count", "ratio") else f" {unit}"
    if isinstance(value, float) and not value.is_integer():
        return (f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}") + suffix
    return f"{value:,.0f}{suffix}"


def _where(fig: dict[str, Any]) -> str:
    detail = fig.get("formula") or fig.get("why") or ""
    if fig.get("source"):
        source = f"{fig['source']}, {fig['as_of']}" if fig.get("as_of") else str(fig["source"])
        detail = f"{detail} ({source})" if detail else source
    return f"{fig['provenance']}: {detail}" if detail else str(fig["provenance"])


def _figures(title: str, figures: dict[str, dict[str, Any]], change: bool = False) -> None:
    tbl = Table(title=title)
    tbl.add_column("figure")
    tbl.add_column("value", justify="right")
    tbl.add_column("where it came from", ratio=1, overflow="fold")
    for name, fig in figures.items():
        tbl.add_row(name, _value(fig, change), _where(fig))
    out.print(tbl)


def show(data: dict[str, Any]) -> None:
    """The three pillars as tables; --json has the same figures."""
    out.print(f"[bold]{data['scenario']}[/bold]: ROI on three pillars", highlight=False)
    if data["efficiency"] is None:
        out.print("1. Efficiency gains: the scenario gives no roi.efficiency", highlight=False)
    else:
        _figures("1. Efficiency gains (per video, per month, over the horizon)", data["efficiency"]["figures"])
    perf = data["performance"]
    if perf is None:
        out.print("2. Performance lift: the scenario gives no roi.baseline or roi.ai campaign", highlight=False)
    else:
        campaigns = [k for k in ("baseline", "ai") if k in perf]
        tbl = Table(title="2. Performance lift")
        tbl.add_column("figure")
        for k in campaigns:
            tbl.add_column(f"{k}: {perf[k]['label']}", justify="right")
        tbl.add_column("where it came from", ratio=1, overflow="fold")
        for name in perf[campaigns[0]]["figures"]:
            figs = [perf[k]["figures"][name] for k in campaigns]
            tbl.add_row(name, *(_value(f) for f in figs), "; ".join(dict.fromkeys(_where(f) for f in figs)))
        out.print(tbl)
        for k in campaigns:
            if perf[k].get("note"):
                out.print(f"[yellow]{k}:[/yellow] {perf[k]['note']}", highlight=False)
        if perf["changes"]:
            _figures("AI campaign against the baseline (relative change)", perf["changes"], change=True)
    strat = data["strategic"]
    if strat is None:
        out.print("3. Strategic value: the scenario gives no roi.strategic factors", highlight=False)
        return
    tbl = Table(title=f"3. Strategic value: {strat['note']}")
    for col in ("factor", "score", "weight", "why"):
        tbl.add_column(col, overflow="fold")
    for f in strat["factors"]:
        tbl.add_row(f["factor"], f"{f['score']:g}/5", f"{f['weight']:g}", f.get("why", ""))
    out.print(tbl)
    score = strat["score"]
    shown = "—" if score["value"] is None else f"{score['value']:.2f}/5"
    out.print(f"weighted score {shown} ({_where(score)})", highlight=False)
    if strat["value_usd_per_year"]["value"] is not None:
        out.print(f"valued at {_value(strat['value_usd_per_year'])} (scenario)", highlight=False)
