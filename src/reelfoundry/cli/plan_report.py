"""``reelfoundry plan report``: GIM, TCO, E-TCO and ROI with charts in one self-contained HTML file."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Annotated

import typer

from reelfoundry.cli.client import CLIError
from reelfoundry.cli.common import common_options, console
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

    if not output.parent.resolve().is_dir():
        raise CLIError(f"directory {str(output.parent)!r} does not exist")
    if output.is_dir():
        raise CLIError(f"{str(output)!r} is a directory")
    loaded = scenario_from(scenario)
    measured = measured_from_usage() if from_usage else None
    with console.status("computing GIM, TCO, E-TCO and ROI, drawing charts"):
        html = build(loaded, measured)
    tmp = output.with_name(f".{output.name}.{os.getpid()}.part")
    try:
        tmp.write_text(html, encoding="utf-8")
        tmp.replace(output)
    except OSError as exc:
        raise CLIError(f"cannot write {str(output)!r}: {exc.strerror}") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    console.print(f"wrote {output} ({len(html.encode()) // 1024} KiB)", highlight=False)
