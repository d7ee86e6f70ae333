"""``reelfoundry collections create|list|show|add|remove|delete``: named sets of the tenant's assets."""

from __future__ import annotations

from typing import Annotated

import typer

from reelfoundry.cli.common import AsJson, client, common_options, emit, print_json, show_record, table
from reelfoundry.cli.common import valid_id as _id

collections_app = typer.Typer(help="Collections of assets (brand kits, campaign picks).", no_args_is_help=True)


@collections_app.command("create")
@common_options()
def collections_create(
    name: str,
    description: Annotated[str | None, typer.Option("--description")] = None,
    as_json: AsJson = False,
) -> None:
    """A new, empty collection (names are unique in the tenant)."""
    body = {"name": name, **({"description": description} if description else {})}
    coll = client().json("POST", "/v1/collections", json=body)
    emit(coll, as_json, f"created collection {coll['id']} ({coll['name']})")


@collections_app.command("list")
@common_options()
def collections_list(
    limit: Annotated[int, typer.Option("--limit", min=1, max=200)] = 50, as_json: AsJson = False
) -> None:
    """The tenant's collections, newest first."""
    page = client().json("GET", "/v1/collections", params={"limit": limit})
    if as_json:
        print_json(page["items"])
        return
    table(page["items"], ["id", "name", "asset_count", "description", "created_at"], "Collections")


@collections_app.command("show")
@common_options()
def collections_show(
    collection_id: str,
    assets: Annotated[bool, typer.Option("--assets", help="List the assets in it too.")] = False,
    as_json: AsJson = False,
) -> None:
    """One collection (with --assets: and up to 200 of its assets)."""
    api = client()
    coll = api.json("GET", f"/v1/collections/{_id('collection', collection_id)}")
    if assets:
        coll["assets"] = api.json("GET", "/v1/assets", params={"collection": collection_id, "limit": 200})["items"]
    if as_json or not assets:
        show_record(coll, as_json, f"Collection {coll['name']}")
        return
    table(coll["assets"], ["id", "review_state", "title", "media_type", "created_at"], f"Collection {coll['name']}")


@collections_app.command("add")
@common_options()
def collections_add(
    collection_id: str,
    asset_ids: Annotated[list[str], typer.Argument(help="Assets to add (at most 200).")],
    as_json: AsJson = False,
) -> None:
    """Add assets to a collection (those already in it stay once)."""
    ids = [_id("asset", a) for a in asset_ids]
    coll = client().json("POST", f"/v1/collections/{_id('collection', collection_id)}/assets", json={"asset_ids": ids})
    emit(coll, as_json, f"collection {coll['name']} holds {coll['asset_count']} assets")


@collections_app.command("remove")
@common_options()
def collections_remove(collection_id: str, asset_id: str, as_json: AsJson = False) -> None:
    """Take an asset out of a collection (the asset stays)."""
    path = f"/v1/collections/{_id('collection', collection_id)}/assets/{_id('asset', asset_id)}"
    coll = client().json("DELETE", path)
    emit(coll, as_json, f"collection {coll['name']} holds {coll['asset_count']} assets")


@collections_app.command("delete")
@common_options()
def collections_delete(collection_id: str, as_json: AsJson = False) -> None:
    """Delete a collection (its assets stay)."""
    api = client()
    with api._errors():
        api.api.request("DELETE", f"/v1/collections/{_id('collection', collection_id)}")
    emit({"id": collection_id, "deleted": True}, as_json, f"deleted collection {collection_id}")
