"""Collections: named sets of a tenant's assets (brand material to fine-tune on, a campaign's picks)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from reelfoundry.errors import Conflict, InvalidParameter, NotFound
from reelfoundry.ids import new_id
from reelfoundry.schema.dam import Collection, CollectionCreate
from reelfoundry.store.owned import owned
from reelfoundry.store.pagination import page_of, paginate
from reelfoundry.store.tables import AssetRow, CollectionAssetRow, CollectionRow


def get_collection(session: Session, tenant_id: str, collection_id: str) -> CollectionRow:
    """A collection of this tenant, or NotFound (also for other tenants' collections)."""
    return owned(session, CollectionRow, tenant_id, collection_id, "collection")


def create_collection(
    session: Session, tenant_id: str, body: CollectionCreate, created_by: str | None, now: datetime
) -> CollectionRow:
    """A new, empty collection; Conflict when the tenant already has one of that name."""
    taken = session.scalar(
        select(CollectionRow.id).where(CollectionRow.tenant_id == tenant_id, CollectionRow.name == body.name)
    )
    if taken is not None:
        raise Conflict(f"a collection named {body.name!r} already exists ({taken})", parameter="name")
    row = CollectionRow(
        id=new_id(),
        tenant_id=tenant_id,
        name=body.name,
        description=body.description,
        created_by=created_by,
        created_at=now,
    )
    session.add(row)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:  # a concurrent create of the same name won
        raise Conflict(f"a collection named {body.name!r} already exists", parameter="name") from None
    return row


def list_collections(
    session: Session, tenant_id: str, *, cursor: str | None, limit: int
) -> tuple[list[CollectionRow], str | None]:
    """A page of the tenant's collections, newest first."""
    stmt = select(CollectionRow).where(CollectionRow.tenant_id == tenant_id)
    return page_of(list(session.scalars(paginate(stmt, CollectionRow.id, cursor, limit))), limit)


def counts(session: Session, collection_ids: list[str]) -> dict[str, int]:
    """How many assets each collection holds."""
    if not collection_ids:
        return {}
    rows = session.execute(
        select(CollectionAssetRow.collection_id, func.count())
        .where(CollectionAssetRow.collection_id.in_(collection_ids))
        .group_by(CollectionAssetRow.collection_id)
    ).all()
    return {str(c): int(n) for c, n in rows}


def add_assets(
    session: Session, row: CollectionRow, asset_ids: list[str], added_by: str | None, now: datetime
) -> list[str]:
    """Add the tenant's assets to the collection; returns those not there before. InvalidParameter naming
    ``asset_ids[i]`` for one that is not the tenant's."""
    wanted = list(dict.fromkeys(asset_ids))
    found = set(
        session.scalars(select(AssetRow.id).where(AssetRow.tenant_id == row.tenant_id, AssetRow.id.in_(wanted)))
    )
    for i, asset_id in enumerate(asset_ids):
        if asset_id not in found:
            raise InvalidParameter(f"asset_ids[{i}]", f"asset_ids[{i}]: asset {asset_id!r} not found")
    present = set(
        session.scalars(
            select(CollectionAssetRow.asset_id).where(
                CollectionAssetRow.collection_id == row.id, CollectionAssetRow.asset_id.in_(wanted)
            )
        )
    )
    added = [a for a in wanted if a not in present]
    for asset_id in added:
        session.add(CollectionAssetRow(collection_id=row.id, asset_id=asset_id, added_by=added_by, added_at=now))
    session.flush()
    return added


def remove_asset(session: Session, row: CollectionRow, asset_id: str) -> None:
    """Take an asset out of the collection; NotFound when it is not in it."""
    result = session.execute(
        delete(CollectionAssetRow).where(
            CollectionAssetRow.collection_id == row.id, CollectionAssetRow.asset_id == asset_id
        )
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise NotFound(f"asset {asset_id!r} is not in collection {row.id}")


def delete_collection(session: Session, row: CollectionRow) -> None:
    """Delete the collection (its assets stay)."""
    session.execute(delete(CollectionAssetRow).where(CollectionAssetRow.collection_id == row.id))
    session.delete(row)


def collections_of(session: Session, asset_id: str) -> list[CollectionRow]:
    """The collections an asset is in, by name."""
    stmt = (
        select(CollectionRow)
        .join(CollectionAssetRow, CollectionAssetRow.collection_id == CollectionRow.id)
        .where(CollectionAssetRow.asset_id == asset_id)
        .order_by(CollectionRow.name)
    )
    return list(session.scalars(stmt))


def to_collection(row: CollectionRow, asset_count: int) -> Collection:
    """The public schema of a collection."""
    return Collection(
        id=row.id,
        tenant_id=row.tenant_id,
        name=row.name,
        description=row.description,
        asset_count=asset_count,
        created_by=row.created_by,
        created_at=row.created_at,
    )
