"""``reelfoundry keys create|list|revoke`` (admin) and ``keys token`` (offline)."""

from __future__ import annotations

from typing import Annotated

import typer

from reelfoundry.cli.common import AsJson, client, common_options, console, emit, out, print_json, table
from reelfoundry.cli.common import valid_id as _id
from reelfoundry.schema import Role

keys_app = typer.Typer(help="Create, list and revoke API keys (admin).", no_args_is_help=True)


@keys_app.command("create")
@common_options()
def keys_create(
    name: Annotated[str, typer.Option("--name", help="Label for the key.")],
    role: Annotated[Role, typer.Option("--role", help="What the key may do.")],
    tenant: Annotated[str | None, typer.Option("--tenant", help="Tenant (operator admins only).")] = None,
    as_json: AsJson = False,
) -> None:
    """Create a key; its secret is printed once."""
    body = {"name": name, "role": role.value, **({"tenant": tenant} if tenant else {})}
    key = client().json("POST", "/v1/keys", json=body)
    if as_json:
        print_json(key)
    else:
        console.print(
            f"created {key['role']} key {key['id']} in tenant {key['tenant']}; secret (shown once):", highlight=False
        )
        out.print(key["secret"], highlight=False)


@keys_app.command("list")
@common_options()
def keys_list(as_json: AsJson = False) -> None:
    """The tenant's keys (never their secrets)."""
    page = client().json("GET", "/v1/keys", params={"limit": 200})
    if as_json:
        print_json(page["items"])
    else:
        table(page["items"], ["id", "name", "role", "tenant", "created_at", "revoked_at"], "API keys")


@keys_app.command("revoke")
@common_options()
def keys_revoke(key_id: str, as_json: AsJson = False) -> None:
    """Revoke a key."""
    key = client().json("DELETE", f"/v1/keys/{_id('key', key_id)}")
    emit(key, as_json, f"revoked key {key_id}")


@keys_app.command("token")
def keys_token() -> None:
    """Print a new key token, made here without a server: give it to a fresh deployment as REELFOUNDRY_ADMIN_KEY
    (e.g. in a Kubernetes Secret) and it becomes the operator's first admin key."""
    from reelfoundry.store.keys import new_token

    out.print(new_token(), highlight=False)
