"""``reelfoundry tenant show|set``."""

from __future__ import annotations

from typing import Annotated

import typer

from reelfoundry.cli.client import CLIError
from reelfoundry.cli.common import AsJson, client, common_options, show_record

tenant_app = typer.Typer(help="Your tenant's settings.", no_args_is_help=True)


@tenant_app.command("show")
@common_options()
def tenant_show(as_json: AsJson = False) -> None:
    """Your tenant's settings."""
    tenant = client().json("GET", "/v1/tenant")
    show_record(tenant, as_json, "Tenant")


@tenant_app.command("set")
@common_options()
def tenant_set(
    allow_self_approval: Annotated[
        bool | None,
        typer.Option(
            "--allow-self-approval/--no-self-approval",
            help="Whether the key that submitted a job may approve its asset.",
        ),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Change your tenant's settings (admin); prints them."""
    body = {k: v for k, v in {"allow_self_approval": allow_self_approval}.items() if v is not None}
    if not body:
        raise CLIError("nothing to change: pass --allow-self-approval or --no-self-approval")
    tenant = client().json("PATCH", "/v1/tenant", json=body)
    show_record(tenant, as_json, "Tenant")
