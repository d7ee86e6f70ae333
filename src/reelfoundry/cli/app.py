"""The root ``reelfoundry`` app: the common options, ``--version``, shell completion and every command group."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reelfoundry import __version__
from reelfoundry.cli.assets import assets_app
from reelfoundry.cli.audit import audit_app
from reelfoundry.cli.budgets import budgets_app
from reelfoundry.cli.collections import collections_app
from reelfoundry.cli.common import CLIState, out
from reelfoundry.cli.finetune import finetune
from reelfoundry.cli.generate import generate
from reelfoundry.cli.jobs import jobs_app, submit
from reelfoundry.cli.keys import keys_app
from reelfoundry.cli.kpi import kpi
from reelfoundry.cli.models import models_app, schema_app
from reelfoundry.cli.outcomes import outcomes_app
from reelfoundry.cli.plan import plan_app
from reelfoundry.cli.review import review_app
from reelfoundry.cli.serve import serve
from reelfoundry.cli.simulate import simulate_app
from reelfoundry.cli.storage import storage_app
from reelfoundry.cli.tenant import tenant_app
from reelfoundry.cli.train import eval_app, train_app
from reelfoundry.cli.usage import prices, usage
from reelfoundry.cli.verify import verify
from reelfoundry.cli.webhooks import webhooks_app

app = typer.Typer(
    name="reelfoundry",
    help="ReelFoundry: self-hosted generative video.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        out.print(__version__, highlight=False)
        raise typer.Exit(0)


@app.callback()
def root(
    ctx: typer.Context,
    server: Annotated[
        str | None, typer.Option("--server", envvar="REELFOUNDRY_SERVER", help="Server URL (default: local).")
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            envvar="REELFOUNDRY_DATA_DIR",
            help="Data directory (default: ./reelfoundry-data; `generate`: your user data directory).",
        ),
    ] = None,
    api_key: Annotated[
        str | None, typer.Option("--api-key", help="API key (default: $REELFOUNDRY_API_KEY or <data-dir>/admin.key).")
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """ReelFoundry: self-hosted generative video.

    --server, --data-dir and --api-key go here or after a command; after the command wins.
    """
    ctx.obj = CLIState(server=server, data_dir=data_dir, api_key=api_key)


for _name, _command in (
    ("generate", generate),
    ("serve", serve),
    ("submit", submit),
    ("verify", verify),
    ("usage", usage),
    ("prices", prices),
    ("kpi", kpi),
    ("finetune", finetune),
):
    app.command(_name)(_command)

for _name, _group in (
    ("jobs", jobs_app),
    ("assets", assets_app),
    ("collections", collections_app),
    ("review", review_app),
    ("keys", keys_app),
    ("budgets", budgets_app),
    ("outcomes", outcomes_app),
    ("webhooks", webhooks_app),
    ("tenant", tenant_app),
    ("models", models_app),
    ("schema", schema_app),
    ("audit", audit_app),
    ("train", train_app),
    ("eval", eval_app),
    ("simulate", simulate_app),
    ("storage", storage_app),
    ("plan", plan_app),
):
    app.add_typer(_group, name=_name)


@app.command()
def version() -> None:
    """Print the version."""
    out.print(__version__, highlight=False)
