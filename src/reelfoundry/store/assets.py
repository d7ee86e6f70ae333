"""Asset rows: lookup, listing and the public schema."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from reelfoundry.errors import InvalidParameter, InvalidTransition, NotFound
from reelfoundry.ids import is_id
from reelfoundry.schema import Asset, Review, ReviewDecision, ReviewState, Role
from reelfoundry.store.owned import owned
from reelfoundry.store.pagination import page_of, paginate
from reelfoundry.store.tables import AssetRow, utcnow


def get_asset(session: Session, tenant_id: str, asset_id: str) -> AssetRow:
    """An asset of this tenant, or NotFound (also for other tenants' assets)."""
    return owned(session, AssetRow, tenant_id, asset_id, "asset")


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
    review_state: ReviewState | None = None,
) -> tuple[list[AssetRow], str | None]:
    """A page of the tenant's assets, newest first, optionally by project, campaign and review state."""
    stmt = select(AssetRow).where(AssetRow.tenant_id == tenant_id)
    if review_state is not None:
        stmt = stmt.where(AssetRow.review_state == review_state.value)
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
    created_by: str | None,
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
        created_by=created_by,
        review_state=ReviewState.pending_review.value,
        created_at=utcnow(),
    )
    session.add(row)
    return row


def labels_in_use(session: Session, tenant_id: str) -> tuple[list[str], list[str]]:
    """The distinct projects and campaigns of the tenant's assets (for filter menus)."""
    projects = session.scalars(
        select(AssetRow.project).where(AssetRow.tenant_id == tenant_id, AssetRow.project.is_not(None)).distinct()
    )
    campaigns = session.scalars(
        select(AssetRow.campaign).where(AssetRow.tenant_id == tenant_id, AssetRow.campaign.is_not(None)).distinct()
    )
    return sorted(p for p in projects if p), sorted(c for c in campaigns if c)


def _move(session: Session, row: AssetRow, target: ReviewState, **values: object) -> None:
    """Move ``row`` from the state it was read in to ``target``; InvalidTransition if another writer moved it first."""
    result = session.execute(
        update(AssetRow)
        .where(AssetRow.id == row.id, AssetRow.review_state == row.review_state)
        .values(review_state=target.value, **values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise InvalidTransition(f"asset {row.id} changed review state meanwhile; read it again")
    session.refresh(row)


def record_review(
    session: Session, row: AssetRow, target: ReviewState, *, reviewer_key_id: str, reviewer_role: Role, comment: str
) -> None:
    """Store a decision on a pending asset (the caller has checked it is allowed)."""
    _move(
        session,
        row,
        target,
        reviewer_key_id=reviewer_key_id,
        reviewer_role=reviewer_role.value,
        review_comment=comment,
        reviewed_at=utcnow(),
    )


def record_publication(session: Session, row: AssetRow, *, key: str, sha256: str, size: int, at: datetime) -> None:
    """Mark an approved asset published, with its published rendition."""
    _move(
        session,
        row,
        ReviewState.published,
        published_key=key,
        published_sha256=sha256,
        published_bytes=size,
        published_at=at,
    )


def find_published(session: Session, asset_id: str) -> AssetRow | None:
    """A published asset of any tenant (delivery URLs carry no key); None for anything else."""
    row = session.get(AssetRow, asset_id) if is_id(asset_id) else None
    if row is None or row.review_state != ReviewState.published.value or row.published_key is None:
        return None
    return row


def to_review(row: AssetRow) -> Review | None:
    """The decision on an asset, once made."""
    if row.reviewer_key_id is None or row.reviewed_at is None or row.reviewer_role is None:
        return None
    decision = ReviewDecision.reject if row.review_state == ReviewState.rejected.value else ReviewDecision.approve
    return Review(
        decision=decision,
        comment=row.review_comment or "",
        reviewer_key_id=row.reviewer_key_id,
        reviewer_role=Role(row.reviewer_role),
        reviewed_at=row.reviewed_at,
    )


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
        created_by=row.created_by,
        review_state=ReviewState(row.review_state),
        review=to_review(row),
        published_at=row.published_at,
        created_at=row.created_at,
    )
