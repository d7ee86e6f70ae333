"""``reelfoundry plan gim``: the Generative Infrastructure Matrix for a scenario."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from reelfoundry.cli.common import AsJson, check_output, common_options, out, print_json, write_output
from reelfoundry.cli.plan import FromUsage, ScenarioArg, measured_from_usage, scenario_from


@common_options()
def gim(
    scenario: ScenarioArg,
    chart: Annotated[
        Path | None, typer.Option("--chart", help="Draw each option's driver scores and total as a PNG.")
    ] = None,
    from_usage: FromUsage = False,
    as_json: AsJson = False,
) -> None:
    """Score on-premise, public cloud API, specialised cloud VPC and hybrid on Volume, Latency, Security,
    Cost and Fine-tuning control, from the scenario's facts and weights; every score shows its facts and
    formula (--json has them all)."""
    from reelfoundry.planning.gim import evaluate

    facts = scenario_from(scenario)
    if chart is not None:
        check_output(chart, "--chart")
    result = evaluate(facts, measured_from_usage() if from_usage else None)
    if chart is not None:
        from reelfoundry.planning.report import gim_chart

        write_output(chart, gim_chart(result))
    data = result.to_json()
    if as_json:
        print_json(data)
        return
    show(data)


def show(data: dict[str, Any]) -> None:
    """The ranking as a table (options × drivers), then the recommendation and its reasons."""
    needs = data["needs"]
    out.print(
        f"[bold]{data['scenario']}[/bold]: peak {needs['peak_videos_per_month']:,.0f} videos a month "
        f"({needs['volume_source']}) "
        f"(volume level {needs['volume_level']:.2f}), latency target {needs['latency_target_s']:g} s "
        f"(need {needs['latency_need']:.2f}), data {', '.join(needs['data_classes'])} "
        f"(security need {needs['security_need']:.2f}), fine-tuning {needs['fine_tuning']}, "
        f"GPU ops {needs['gpu_ops_experience']}",
        highlight=False,
    )
    weights = data["weights"]
    tbl = Table(title="Generative Infrastructure Matrix (scores 0–10; --json for facts and formulas)")
    tbl.add_column("#")
    tbl.add_column("option", no_wrap=True)
    for driver, weight in weights.items():
        tbl.add_column(f"{driver}\n×{weight:.2f}", justify="right")
    tbl.add_column("score", justify="right", style="bold")
    for i, option in enumerate(data["ranking"], 1):
        cells = [f"{option['drivers'][d]['score']:.1f}" for d in weights]
        tbl.add_row(str(i), option["option"], *cells, f"{option['score']:.2f}")
    out.print(tbl)
    rec = data["recommendation"]
    out.print(f"[bold green]Recommended: {rec['option']}[/bold green] — {rec['label']}", highlight=False)
    for reason in rec["why"]:
        out.print(f"  • {reason}", highlight=False)
    for option in data["ranking"]:
        for note in option["notes"]:
            out.print(f"  ! {option['option']}: {note}", highlight=False)
