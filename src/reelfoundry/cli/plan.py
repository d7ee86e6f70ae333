"""``reelfoundry plan``: decision support from a scenario file — GIM, TCO, ROI, E-TCO and HTML reports.

Each command lives in its own module and is registered here; they share :data:`ScenarioArg` and
:func:`scenario_from`, which turns a bad file into one line naming the field and exit code 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reelfoundry.planning.scenario import Scenario, load_scenario

plan_app = typer.Typer(
    help="Plan where and how to run generative video: GIM, TCO, ROI, E-TCO and reports, from a scenario YAML "
    "(see examples/scenarios/).",
    no_args_is_help=True,
)

ScenarioArg = Annotated[
    Path, typer.Argument(help="Scenario YAML (examples/scenarios/ has a bank, a retailer and a studio).")
]


def scenario_from(path: Path) -> Scenario:
    """The scenario at ``path``; InvalidParameter (one line, exit code 2 under ``friendly``) when it is bad."""
    return load_scenario(path)


# The commands import ScenarioArg and scenario_from from this module, so they are registered after both exist.
from reelfoundry.cli.plan_gim import gim  # noqa: E402
from reelfoundry.cli.plan_report import report  # noqa: E402
from reelfoundry.cli.plan_roi import roi  # noqa: E402
from reelfoundry.cli.plan_tco import tco  # noqa: E402

for _name, _command in (("gim", gim), ("tco", tco), ("roi", roi), ("report", report)):
    plan_app.command(_name)(_command)
