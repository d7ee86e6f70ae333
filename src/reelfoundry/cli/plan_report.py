"""``reelfoundry plan report``: GIM, TCO, E-TCO and ROI with charts in one self-contained HTML file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reelfoundry.cli.common import check_output, common_options, console, write_output
from reelfoundry.cli.plan import FromUsage, ScenarioArg, measured_from_usage, scenario_from


@common_options()
def report(
    scenario: ScenarioArg,
    output: Annotated[Path, typer.Option("-o", "--output", help="The HTML file to write.")] = Path("report.html"),
    from_usage: FromUsage = False,
) -> None:
    """Write one HTML file (no scripts, charts embedded, opens offline) with the GIM ranking and its reasons,
    the TCO of every option with break-even and the cost-volume chart, energy and carbon (E-TCO), and the ROI
    pillars when the scenario has `roi` inputs."""
    from reelfoundry.planning.report import build

    check_output(output, "-o")
    loaded = scenario_from(scenario)
    measured = measured_from_usage() if from_usage else None
    with console.status("computing GIM, TCO, E-TCO and ROI, drawing charts"):
        html = build(loaded, measured)
    write_output(output, html.encode())
