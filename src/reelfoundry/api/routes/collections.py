"""/v1/collections: named sets of the tenant's assets (create, list, read, add and remove assets, delete).

A collection's assets are listed and searched with ``GET /v1/assets?collection=<id>``.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from reelfoundry.api.deps import Cursor, Limit, PlatformDep, Reader, Submitter
from reelfoundry.schema import Page
from reelfoundry.schema.dam import Collection, CollectionAssets, CollectionCreate
from reelfoundry.store import audit
from reelfoundry.store import collections as collectionstore
from reelfoundry.store.tables import utcnow

router = APIRouter(prefix="/collections", tags=["assets"])


@router.post(
    "",
    status_code=201,
    response_model=Collection,
    summary="Create a collection",
    responses={409: {"description": "The tenant already has a collection of that name."}},
    openapi_extra={
        "requestBody": {
            "content": {"application/json": {"example": {"name": "brand-kit", "description": "Approved brand shots"}}}
        }
    },
)
def create_collection(body: CollectionCreate, platform: PlatformDep, principal: Submitter) -> Collection:
    """A new, empty collection; names are unique within the tenant."""
    with platform.db.write() as session:
        row = collectionstore.create_collection(session, principal.tenant_id, body, principal.key_id, utcnow())
        audit.append_by(session, principal, "collection.created", subject=row.id, data={"name": row.name})
        return collectionstore.to_collection(row, 0)


@router.get("", response_model=Page[Collection], summary="List collections, newest first")
def list_collections(
    platform: PlatformDep, principal: Reader, cursor: Cursor = None, limit: Limit = 50
) -> Page[Collection]:
    """The tenant's collections with how many assets each holds."""
    with platform.db.read() as session:
        rows, nxt = collectionstore.list_collections(session, principal.tenant_id, cursor=cursor, limit=limit)
        counts = collectionstore.counts(session, [r.id for r in rows])
        items = [collectionstore.to_collection(r, counts.get(r.id, 0)) for r in rows]
    return Page[Collection](items=items, next_cursor=nxt)


@router.get("/{collection_id}", response_model=Collection, summary="Read a collection")
def get_collection(collection_id: str, platform: PlatformDep, principal: Reader) -> Collection:
    """One collection of the tenant (its assets: ``GET /v1/assets?collection=<id>``)."""
    with platform.db.read() as session:
        row = collectionstore.get_collection(session, principal.tenant_id, collection_id)
        return collectionstore.to_collection(row, collectionstore.counts(session, [row.id]).get(row.id, 0))


@router.post(
    "/{collection_id}/assets",
    response_model=Collection,
    summary="Add assets to a collection",
    openapi_extra={
        "requestBody": {"content": {"application/json": {"example": {"asset_ids": ["01JDQ0Z8Y6M3V4W5X6Y7Z8A9BC"]}}}}
    },
)
def add_collection_assets(
    collection_id: str, body: CollectionAssets, platform: PlatformDep, principal: Submitter
) -> Collection:
    """Add the tenant's assets (those already in it stay once); a 422 names an asset that is not the tenant's."""
    with platform.db.write() as session:
        row = collectionstore.get_collection(session, principal.tenant_id, collection_id)
        added = collectionstore.add_assets(session, row, body.asset_ids, principal.key_id, utcnow())
        if added:
            audit.append_by(session, principal, "collection.assets_added", subject=row.id, data={"asset_ids": added})
        return collectionstore.to_collection(row, collectionstore.counts(session, [row.id]).get(row.id, 0))


@router.delete(
    "/{collection_id}/assets/{asset_id}",
    response_model=Collection,
    summary="Remove an asset from a collection",
)
def remove_collection_asset(
    collection_id: str, asset_id: str, platform: PlatformDep, principal: Submitter
) -> Collection:
    """Take one asset out (the asset itself stays); 404 when it is not in the collection."""
    with platform.db.write() as session:
        row = collectionstore.get_collection(session, principal.tenant_id, collection_id)
        collectionstore.remove_asset(session, row, asset_id)
        audit.append_by(session, principal, "collection.asset_removed", subject=row.id, data={"asset_id": asset_id})
        return collectionstore.to_collection(row, collectionstore.counts(session, [row.id]).get(row.id, 0))


@router.delete(
    "/{collection_id}", status_code=204, response_class=Response, summary="Delete a collection (its assets stay)"
)
def delete_collection(collection_id: str, platform: PlatformDep, principal: Submitter) -> Response:
    """Remove the collection; the assets in it are not touched."""
    with platform.db.write() as session:
        row = collectionstore.get_collection(session, principal.tenant_id, collection_id)
        audit.append_by(session, principal, "collection.deleted", subject=row.id, data={"name": row.name})
        collectionstore.delete_collection(session, row)
    return Response(status_code=204)
