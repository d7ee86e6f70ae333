"""``reelfoundry plan``: decision support from a scenario file — GIM, TCO, ROI, E-TCO and HTML reports.

Each command lives in its own module and is registered here; they share :data:`ScenarioArg` and
:func:`scenario_from`, which turns a bad file into one line naming the field and exit code 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from reelfoundry.cli.client import CLIError
from reelfoundry.planning.scenario import Scenario, load_scenario

if TYPE_CHECKING:
    from reelfoundry.planning.tco import Measured

plan_app = typer.Typer(
    help="Plan where and how to run generative video: GIM, TCO, ROI, E-TCO and reports, from a scenario YAML "
    "(see examples/scenarios/).",
    no_args_is_help=True,
)

ScenarioArg = Annotated[
    Path, typer.Argument(help="Scenario YAML (examples/scenarios/ has a bank, a retailer and a studio).")
]


FromUsage = Annotated[
    bool,
    typer.Option(
        "--from-usage",
        help="Take volume and seconds per video from this platform's cost records (the server, else the data dir) "
        "and add this platform, priced as measured.",
    ),
]


def scenario_from(path: Path) -> Scenario:
    """The scenario at ``path``; InvalidParameter (one line, exit code 2 under ``friendly``) when it is bad."""
    return load_scenario(path)


def measured_from_usage() -> Measured:
    """Volume, seconds, cost, energy and carbon per video from the platform's cost records, by day."""
    from reelfoundry.cli.usage import _usage_rows
    from reelfoundry.planning.tco import Measured

    rows = _usage_rows({"by": "day"}, ["day"], None, None)
    measured = Measured.from_usage_rows(rows)
    if measured is None:
        raise CLIError("--from-usage: no cost records of delivered videos yet; run some jobs or drop --from-usage")
    return measured


# The commands import ScenarioArg and scenario_from from this module, so they are registered after both exist.
from reelfoundry.cli.plan_gim import gim  # noqa: E402
from reelfoundry.cli.plan_report import report  # noqa: E402
from reelfoundry.cli.plan_roi import roi  # noqa: E402
from reelfoundry.cli.plan_tco import tco  # noqa: E402

for _name, _command in (("gim", gim), ("tco", tco), ("roi", roi), ("report", report)):
    plan_app.command(_name)(_command)
