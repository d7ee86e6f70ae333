"""``reelfoundry webhooks deliveries|secret|rotate``: the delivery log and the signing secret."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from reelfoundry.cli.common import AsJson, client, common_options, console, out, print_json, table

webhooks_app = typer.Typer(help="Webhook deliveries and the signing secret.", no_args_is_help=True)


def _show_secret(secret: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(secret)
        return
    out.print(secret["secret"], highlight=False)
    if secret.get("previous_secret"):
        console.print(f"the previous secret signs too until {secret['previous_valid_until']}", highlight=False)


@webhooks_app.command("deliveries")
@common_options()
def webhooks_deliveries(
    limit: Annotated[int, typer.Option("--limit", min=1, max=200)] = 50,
    as_json: AsJson = False,
) -> None:
    """The delivery log, newest first: attempts and last outcome of every webhook."""
    page = client().json("GET", "/v1/webhooks/deliveries", params={"limit": limit})
    if as_json:
        print_json(page["items"])
        return
    columns = ["id", "job_id", "receiver", "state", "attempts", "last_status", "last_error", "delivered_at"]
    table(page["items"], columns, "Webhook deliveries")


@webhooks_app.command("secret")
@common_options()
def webhooks_secret(as_json: AsJson = False) -> None:
    """The tenant's signing secret (admin); verify deliveries with standardwebhooks' Webhook(secret)."""
    _show_secret(client().json("GET", "/v1/webhooks/secret"), as_json)


@webhooks_app.command("rotate")
@common_options()
def webhooks_rotate(
    grace_s: Annotated[
        float | None,
        typer.Option(
            "--grace-s", min=0, max=30 * 86400, help="Seconds the old secret keeps signing (default: server's, 24 h)."
        ),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Rotate the signing secret (admin); prints the new one."""
    body = {} if grace_s is None else {"grace_s": grace_s}
    _show_secret(client().json("POST", "/v1/webhooks/secret/rotate", json=body), as_json)
