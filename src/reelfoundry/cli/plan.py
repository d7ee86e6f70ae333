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


from reelfoundry.cli.plan_tco import tco  # noqa: E402  (plan_tco imports ScenarioArg from here)

plan_app.command("tco")(tco)
from reelfoundry.cli.plan_roi import roi  # noqa: E402

plan_app.command("roi")(roi)
