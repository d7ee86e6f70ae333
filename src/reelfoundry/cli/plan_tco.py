"""``reelfoundry plan tco``: total cost of ownership, with energy and carbon (E-TCO), for a scenario."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from reelfoundry.cli.common import AsJson, check_output, common_options, out, print_json, write_output
from reelfoundry.cli.plan import FromUsage, ScenarioArg, measured_from_usage, scenario_from


@common_options()
def tco(
    scenario: ScenarioArg,
    chart: Annotated[
        Path | None, typer.Option("--chart", help="Draw monthly cost against monthly volume as a PNG.")
    ] = None,
    from_usage: FromUsage = False,
    as_json: AsJson = False,
) -> None:
    """On-premise against every cloud provider and pricing model in the price catalog and against video APIs,
    over the scenario's horizon: CapEx and OpEx, training and inference, energy and CO2e per video, break-even
    utilisation and volume. Every input says where it came from (--json has them all)."""
    from reelfoundry.planning import tco as model

    facts = scenario_from(scenario)
    if chart is not None:
        check_output(chart, "--chart")
    measured = measured_from_usage() if from_usage else None
    result = model.compute(facts, measured=measured)
    if chart is not None:
        write_output(chart, model.cost_volume_chart(result))
    data = result.to_json()
    if as_json:
        print_json(data)
    else:
        show(data)


def _money(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"


def show(data: dict[str, Any]) -> None:
    """Options cheapest first, then the break-even figures and the training/inference split."""
    volume = data["volume"]
    out.print(
        f"[bold]{data['scenario']}[/bold]: {volume['first_month']:,.0f} → {volume['last_month']:,.0f} videos a "
        f"month ({volume['kind']}), {volume['seconds_per_video']:g} s each, {data['months']} months on "
        f"{data['device']}; catalog {data['catalog_version']}",
        highlight=False,
    )
    tbl = Table(title="TCO over the horizon, cheapest first (US$; --json for sources and breakdowns)")
    tbl.add_column("#", justify="right")
    tbl.add_column("option", ratio=1, overflow="fold")
    for name in ("total", "per video", "training", "inference", "kWh/video", "kg CO2e/video"):
        tbl.add_column(name, justify="right", no_wrap=True)
    for i, o in enumerate(data["options"], 1):
        tbl.add_row(
            str(i),
            f"{o['label']} [dim]({o['deployment']})[/dim]",
            _money(o["total_usd"]),
            f"{o['per_video_usd']:.4g}",
            _money(o["training_usd"]),
            _money(o["inference_usd"]),
            f"{o['energy_kwh_per_video']:.4g}",
            f"{o['co2e_kg_per_video']:.4g}",
        )
    out.print(tbl)
    util = data["break_even"]["utilisation"]
    if "utilisation" in util:
        out.print(
            f"Break-even utilisation: {util['verdict']} (owned GPU {util['fixed_usd_per_gpu_hour']:g} $/h fixed + "
            f"{util['variable_usd_per_busy_hour']:g} $/busy h against {util['cloud_option']} at "
            f"{util['cloud_usd_per_gpu_hour']:g} $/h)",
            highlight=False,
        )
    vol = data["break_even"]["volume"]
    for key, what in (("vs_cheapest_api", "the cheapest API"), ("vs_cheapest_cloud", "the cheapest cloud option")):
        value = vol[key]
        shown = f"{value:,} videos a month" if isinstance(value, int) else f"{value} (up to 1e9 a month)"
        out.print(f"Break-even volume, on-premise against {what}: {shown}", highlight=False)
    workload = data["workload"]
    out.print(
        f"Workload: {workload['inference_gpu_hours']:,.0f} GPU-hours of inference and "
        f"{workload['training_gpu_hours']:,.0f} of fine-tuning over the horizon "
        f"({workload['gpu_seconds_per_video_second']:g} GPU-s per video second)",
        highlight=False,
    )
