"""Asset rows: lookup, listing and the public schema."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from reelfoundry.errors import InvalidParameter, NotFound
from reelfoundry.ids import is_id
from reelfoundry.schema import Asset
from reelfoundry.store.pagination import page_of, paginate
from reelfoundry.store.tables import AssetRow, utcnow


def get_asset(session: Session, tenant_id: str, asset_id: str) -> AssetRow:
    """An asset of this tenant, or NotFound (also for other tenants' assets)."""
    row = session.get(AssetRow, asset_id) if is_id(asset_id) else None
    if row is None or row.tenant_id != tenant_id:
        raise NotFound(f"asset {asset_id!r} not found")
    return row


def input_keys(session: Session, tenant_id: str, asset_ids: list[str]) -> list[str]:
    """Storage keys of a request's inputs; InvalidParameter naming ``inputs[i]`` for one not in the tenant."""
    keys = []
    for i, asset_id in enumerate(asset_ids):
        try:
            keys.append(get_asset(session, tenant_id, asset_id).storage_key)
        except NotFound:
            raise InvalidParameter(f"inputs[{i}]", f"inputs[{i}]: asset {asset_id!r} not found") from None
    return keys


def list_assets(
    session: Session,
    tenant_id: str,
    *,
    cursor: str | None,
    limit: int,
    project: str | None = None,
    campaign: str | None = None,
) -> tuple[list[AssetRow], str | None]:
    """A page of the tenant's assets, newest first, optionally by project and campaign."""
    stmt = select(AssetRow).where(AssetRow.tenant_id == tenant_id)
    if project is not None:
        stmt = stmt.where(AssetRow.project == project)
    if campaign is not None:
        stmt = stmt.where(AssetRow.campaign == campaign)
    return page_of(list(session.scalars(paginate(stmt, AssetRow.id, cursor, limit))), limit)


def add_upload(
    session: Session,
    *,
    asset_id: str,
    tenant_id: str,
    storage_key: str,
    media_type: str,
    width: int,
    height: int,
    size: int,
    sha256: str,
    project: str | None,
    campaign: str | None,
) -> AssetRow:
    """Record an uploaded still image (an input for jobs; it has no job)."""
    row = AssetRow(
        id=asset_id,
        tenant_id=tenant_id,
        job_id=None,
        media_type=media_type,
        storage_key=storage_key,
        poster_key=None,
        bytes=size,
        sha256=sha256,
        width=width,
        height=height,
        project=project,
        campaign=campaign,
        created_at=utcnow(),
    )
    session.add(row)
    return row


def to_asset(row: AssetRow) -> Asset:
    """The public schema of an asset row."""
    return Asset(
        id=row.id,
        tenant_id=row.tenant_id,
        job_id=row.job_id,
        media_type=row.media_type,
        bytes=row.bytes,
        sha256=row.sha256,
        duration_s=row.duration_s,
        fps=row.fps,
        width=row.width,
        height=row.height,
        num_frames=row.num_frames,
        codec=row.codec,
        project=row.project,
        campaign=row.campaign,
        created_at=row.created_at,
    )
