"""Asset rows: lookup, listing, DAM metadata, search, rights and the public schema."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Select, or_, select, text, update
from sqlalchemy.orm import Session

from reelfoundry.assets import search as searching
from reelfoundry.errors import Conflict, InvalidParameter, InvalidTransition, NotFound
from reelfoundry.ids import is_id
from reelfoundry.schema import Asset, Review, ReviewDecision, ReviewState, Role
from reelfoundry.schema.dam import METADATA_FIELDS, NO_TRAINING, AssetUpdate, Origin, SearchMode, normalise_tags
from reelfoundry.store.owned import owned
from reelfoundry.store.pagination import page_of, paginate
from reelfoundry.store.tables import (
    AssetRow,
    AssetSearchRow,
    CollectionAssetRow,
    CollectionRow,
    JobRow,
    utcnow,
)

#: Most assets a semantic search ranks, and most embeddings one search computes that were missing.
MAX_SEMANTIC_CANDIDATES = 100_000
EMBED_BATCH = 64
MAX_EMBED_PER_SEARCH = 2048
#: Most full-text hits considered before filters and ranking.
MAX_TEXT_HITS = 5000
#: Most earlier uploads a new upload is compared with for near duplicates (newest first).
MAX_DUPLICATE_CANDIDATES = 50_000


class RightsExpired(Conflict):
    """The asset's rights have expired: it may not be published (or used for training)."""

    type_slug = "rights-expired"
    title = "Rights expired"


def get_asset(session: Session, tenant_id: str, asset_id: str) -> AssetRow:
    """An asset of this tenant, or NotFound (also for other tenants' assets)."""
    return owned(session, AssetRow, tenant_id, asset_id, "asset")


def lock_asset(session: Session, tenant_id: str, asset_id: str) -> AssetRow:
    """An asset of this tenant read afresh and locked for the rest of the transaction (PostgreSQL; SQLite writers
    are one at a time anyway), so two edits of its metadata apply one after the other; NotFound otherwise."""
    row = get_asset(session, tenant_id, asset_id)
    session.refresh(row, with_for_update=True)
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


@dataclass(frozen=True)
class AssetFilters:
    """What a listing or search narrows the tenant's assets to (None: any)."""

    project: str | None = None
    campaign: str | None = None
    review_state: ReviewState | None = None
    model: str | None = None
    brand: str | None = None
    tag: str | None = None
    collection_id: str | None = None
    origin: Origin | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


def _tag_filter(session: Session, tag: str) -> Any:
    """Assets whose JSON ``tags`` list holds ``tag`` (each database spells JSON array membership its own way)."""
    if session.get_bind().dialect.name == "postgresql":
        sql = "EXISTS (SELECT 1 FROM json_array_elements_text(assets.tags) AS t(v) WHERE t.v = :tag_filter)"
    else:
        sql = "EXISTS (SELECT 1 FROM json_each(assets.tags) WHERE json_each.value = :tag_filter)"
    return text(sql).bindparams(tag_filter=tag)


def filtered(session: Session, tenant_id: str, filters: AssetFilters) -> Select[Any]:
    """The tenant's assets matching ``filters``, unordered."""
    f = filters
    stmt = select(AssetRow).where(AssetRow.tenant_id == tenant_id)
    for column, value in (
        (AssetRow.project, f.project),
        (AssetRow.campaign, f.campaign),
        (AssetRow.brand, f.brand),
        (AssetRow.review_state, f.review_state.value if f.review_state else None),
        (AssetRow.origin, f.origin.value if f.origin else None),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if f.model is not None:
        jobs = select(JobRow.id).where(JobRow.tenant_id == tenant_id, JobRow.model == f.model)
        stmt = stmt.where(AssetRow.job_id.in_(jobs))
    if f.tag is not None:
        stmt = stmt.where(_tag_filter(session, f.tag))
    if f.collection_id is not None:
        members = select(CollectionAssetRow.asset_id).where(CollectionAssetRow.collection_id == f.collection_id)
        stmt = stmt.where(AssetRow.id.in_(members))
    if f.created_after is not None:
        stmt = stmt.where(AssetRow.created_at >= f.created_after)
    if f.created_before is not None:
        stmt = stmt.where(AssetRow.created_at < f.created_before)
    return stmt


def list_assets(
    session: Session,
    tenant_id: str,
    *,
    cursor: str | None,
    limit: int,
    project: str | None = None,
    campaign: str | None = None,
    review_state: ReviewState | None = None,
    filters: AssetFilters | None = None,
) -> tuple[list[AssetRow], str | None]:
    """A page of the tenant's assets, newest first, optionally filtered (project, campaign and review state may
    also come as ``filters``)."""
    f = filters or AssetFilters(project=project, campaign=campaign, review_state=review_state)
    stmt = filtered(session, tenant_id, f)
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
    phash: str | None = None,
    duration_s: float | None = None,
    fps: float | None = None,
    num_frames: int | None = None,
    codec: str | None = None,
) -> AssetRow:
    """Record an uploaded image or video (brand material, or an input for jobs; it has no job)."""
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
        duration_s=duration_s,
        fps=fps,
        num_frames=num_frames,
        codec=codec,
        project=project,
        campaign=campaign,
        created_by=created_by,
        review_state=ReviewState.pending_review.value,
        created_at=utcnow(),
        origin=Origin.uploaded.value,
        phash=phash,
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


def find_published(session: Session, asset_id: str, now: datetime | None = None) -> AssetRow | None:
    """A published asset of any tenant (delivery URLs carry no key) whose rights have not expired by ``now``;
    None for anything else."""
    row = session.get(AssetRow, asset_id) if is_id(asset_id) else None
    if row is None or row.review_state != ReviewState.published.value or row.published_key is None:
        return None
    if rights_expired(row, now or utcnow()):
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
        origin=row.origin,
        title=row.title,
        description=row.description,
        tags=list(row.tags or []),
        suggested_tags=list(row.suggested_tags or []),
        brand=row.brand,
        licence=row.licence,
        consent_ref=row.consent_ref,
        rights_expires_at=row.rights_expires_at,
        usage_restrictions=list(row.usage_restrictions or []),
        metadata_updated_at=row.metadata_updated_at,
    )


# -- rights --------------------------------------------------------------------------------------------------


def rights_expired(row: AssetRow, now: datetime) -> bool:
    """Whether the asset's rights have run out by ``now``."""
    return row.rights_expires_at is not None and row.rights_expires_at <= now


def check_publishable(row: AssetRow, now: datetime) -> None:
    """RightsExpired (409, naming the expiry) when the asset's rights have run out."""
    if row.rights_expires_at is not None and rights_expired(row, now):
        raise RightsExpired(
            f"asset {row.id}'s rights expired at {row.rights_expires_at.isoformat()}; it may not be published",
            rights_expires_at=row.rights_expires_at.isoformat(),
        )


def training_assets(session: Session, tenant_id: str, collection_id: str, now: datetime) -> list[AssetRow]:
    """The assets of a tenant's collection that training may read: approved (or published), rights not expired
    by ``now``, and without the ``no-training`` restriction; oldest first. NotFound for another tenant's
    collection."""
    owned(session, CollectionRow, tenant_id, collection_id, "collection")
    members = select(CollectionAssetRow.asset_id).where(CollectionAssetRow.collection_id == collection_id)
    stmt = (
        select(AssetRow)
        .where(
            AssetRow.tenant_id == tenant_id,
            AssetRow.id.in_(members),
            AssetRow.review_state.in_([ReviewState.approved.value, ReviewState.published.value]),
            or_(AssetRow.rights_expires_at.is_(None), AssetRow.rights_expires_at > now),
        )
        .order_by(AssetRow.id)
    )
    # The restriction lives in a JSON list: checked here, the same way on both databases.
    return [r for r in session.scalars(stmt) if NO_TRAINING not in (r.usage_restrictions or [])]


def rights_expiring(session: Session, now: datetime, within: timedelta, limit: int = 500) -> list[AssetRow]:
    """Assets (every tenant) whose rights expire within ``within`` of ``now`` and not yet announced for that expiry,
    locked so that one dispatcher announces each once."""
    stmt = (
        select(AssetRow)
        .where(
            AssetRow.rights_expires_at.is_not(None),
            AssetRow.rights_expires_at > now,
            AssetRow.rights_expires_at <= now + within,
            AssetRow.rights_notified_at.is_(None),
        )
        .order_by(AssetRow.rights_expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(session.scalars(stmt))


# -- metadata ------------------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def update_metadata(session: Session, row: AssetRow, body: AssetUpdate, now: datetime) -> dict[str, dict[str, Any]]:
    """Apply a PATCH to ``row``: the fields sent (null clears), then accepted suggestions. Returns what changed,
    ``{field: {"from": old, "to": new}}`` (empty: nothing did). A new rights expiry will be announced again.
    InvalidParameter naming ``accept_suggestions`` for a tag that is not suggested."""
    sent = body.model_fields_set
    changes: dict[str, dict[str, Any]] = {}

    def change(field: str, value: Any) -> None:
        old = getattr(row, field)
        if field in ("tags", "usage_restrictions"):
            old, value = list(old or []), list(value or [])
        if old != value:
            changes[field] = {"from": _plain(old), "to": _plain(value)}
            setattr(row, field, value if value != [] else None)

    for field in METADATA_FIELDS:
        if field in sent:
            change(field, getattr(body, field))
    accept = body.accept_suggestions
    if accept:
        suggested = list(row.suggested_tags or [])
        chosen = suggested if accept is True else _chosen(accept, suggested)
        change("tags", [*(row.tags or []), *(t for t in chosen if t not in (row.tags or []))])
        change("suggested_tags", [t for t in suggested if t not in chosen])
    if "rights_expires_at" in changes:
        row.rights_notified_at = None
    if changes:
        row.metadata_updated_at = now
        reindex(session, row, now)
    return changes


def _chosen(accept: list[str], suggested: list[str]) -> list[str]:
    try:
        wanted = normalise_tags(accept, "accept_suggestions") or []
    except ValueError as exc:
        raise InvalidParameter("accept_suggestions", str(exc)) from None
    missing = [t for t in wanted if t not in suggested]
    if missing:
        raise InvalidParameter(
            "accept_suggestions", f"accept_suggestions: {', '.join(map(repr, missing))} not among the suggested tags"
        )
    return wanted


# -- search index --------------------------------------------------------------------------------------------


def _prompt_of(session: Session, row: AssetRow) -> str | None:
    if row.job_id is None:
        return None
    request = session.scalar(select(JobRow.request).where(JobRow.id == row.job_id))
    prompt = (request or {}).get("prompt")
    return str(prompt) if prompt else None


def catalogue(session: Session, row: AssetRow, now: datetime, prompt: str | None = None) -> None:
    """Make a new asset findable: suggested tags from its prompt, and its search text (embedded later, lazily)."""
    suggestions = searching.suggest_tags(prompt)
    row.suggested_tags = suggestions or None
    _write_index(session, row, prompt, now)


def reindex(session: Session, row: AssetRow, now: datetime) -> None:
    """Rewrite an asset's search text after its metadata changed (its embedding is made again when needed)."""
    _write_index(session, row, _prompt_of(session, row), now)


def _write_index(session: Session, row: AssetRow, prompt: str | None, now: datetime) -> None:
    body = searching.search_body(
        prompt=prompt, title=row.title, description=row.description, tags=row.tags, brand=row.brand
    )
    entry = session.get(AssetSearchRow, row.id)
    if entry is None:
        session.add(AssetSearchRow(asset_id=row.id, tenant_id=row.tenant_id, body=body, updated_at=now))
    else:
        entry.body, entry.embedding, entry.embedding_model, entry.updated_at = body, None, None, now
    session.flush()
    if session.get_bind().dialect.name == "sqlite":  # PostgreSQL's GIN index follows the table by itself
        session.execute(text("DELETE FROM asset_search_fts WHERE asset_id = :a"), {"a": row.id})
        session.execute(
            text("INSERT INTO asset_search_fts (asset_id, tenant_id, body) VALUES (:a, :t, :b)"),
            {"a": row.id, "t": row.tenant_id, "b": body},
        )


def ensure_embeddings(session: Session, tenant_id: str, encode: searching.Encoder) -> int:
    """Embed the tenant's search texts that have no (current) embedding yet, at most MAX_EMBED_PER_SEARCH;
    returns how many were embedded."""
    stale = or_(AssetSearchRow.embedding.is_(None), AssetSearchRow.embedding_model != searching.EMBEDDING_MODEL)
    rows = list(
        session.scalars(
            select(AssetSearchRow)
            .where(AssetSearchRow.tenant_id == tenant_id, stale)
            .order_by(AssetSearchRow.asset_id)
            .limit(MAX_EMBED_PER_SEARCH)
        )
    )
    for start in range(0, len(rows), EMBED_BATCH):
        batch = rows[start : start + EMBED_BATCH]
        vectors = encode([r.body or " " for r in batch])
        for entry, vector in zip(batch, vectors, strict=True):
            entry.embedding, entry.embedding_model = searching.to_blob(vector), searching.EMBEDDING_MODEL
    session.flush()
    return len(rows)


def _text_hits(session: Session, tenant_id: str, q: str) -> dict[str, float]:
    """Full-text hits of ``q`` in the tenant's assets: asset id → relevance (higher is better)."""
    if session.get_bind().dialect.name == "postgresql":
        terms = searching.query_terms(q)
        if not terms:
            return {}
        sql = text(
            "SELECT asset_id, ts_rank(to_tsvector('english', body), plainto_tsquery('english', :q)) AS score "
            "FROM asset_search WHERE tenant_id = :t "
            "AND to_tsvector('english', body) @@ plainto_tsquery('english', :q) ORDER BY score DESC LIMIT :n"
        )
        params: dict[str, Any] = {"q": " ".join(terms), "t": tenant_id, "n": MAX_TEXT_HITS}
    else:
        match = searching.fts5_query(q)
        if match is None:
            return {}
        # bm25 rank: lower is better, so negate it.
        sql = text(
            "SELECT asset_id, -rank AS score FROM asset_search_fts "
            "WHERE asset_search_fts MATCH :q AND tenant_id = :t ORDER BY rank LIMIT :n"
        )
        params = {"q": match, "t": tenant_id, "n": MAX_TEXT_HITS}
    return {str(a): float(score) for a, score in session.execute(sql, params).all()}


def search(
    session: Session,
    tenant_id: str,
    q: str,
    *,
    filters: AssetFilters,
    mode: SearchMode,
    limit: int,
    encode: searching.Encoder | None = None,
) -> list[tuple[AssetRow, float]]:
    """The tenant's assets matching ``filters`` ranked by ``q``, best first, at most ``limit``.

    ``text``: every word of ``q`` must occur (FTS5 on SQLite, ``tsvector`` on PostgreSQL, stemmed there).
    ``semantic``: nearest by cosine between MiniLM embeddings of ``q`` and of each asset's text (prompt, title,
    description, tags, brand), in process; missing embeddings are made first (``encode``).
    """
    if mode is SearchMode.text:
        hits = _text_hits(session, tenant_id, q)
        if not hits:
            return []
        stmt = filtered(session, tenant_id, filters).where(AssetRow.id.in_(list(hits)))
        rows = sorted(session.scalars(stmt), key=lambda r: (-hits[r.id], r.id))
        return [(r, hits[r.id]) for r in rows[:limit]]
    if encode is None:
        encode = searching.minilm_encoder()
    ensure_embeddings(session, tenant_id, encode)
    ids_stmt = filtered(session, tenant_id, filters).with_only_columns(AssetRow.id)
    pairs = session.execute(
        select(AssetSearchRow.asset_id, AssetSearchRow.embedding)
        .where(
            AssetSearchRow.tenant_id == tenant_id,
            AssetSearchRow.asset_id.in_(ids_stmt),
            AssetSearchRow.embedding.is_not(None),
        )
        .limit(MAX_SEMANTIC_CANDIDATES)
    ).all()
    if not pairs:
        return []
    ids = [str(a) for a, _ in pairs]
    matrix = np.stack([searching.from_blob(b or b"") for _, b in pairs])
    ranked = searching.rank(encode([q])[0], ids, matrix, limit)
    by_id = {r.id: r for r in session.scalars(select(AssetRow).where(AssetRow.id.in_([i for i, _ in ranked])))}
    return [(by_id[i], score) for i, score in ranked if i in by_id]


# -- near duplicates -----------------------------------------------------------------------------------------


def duplicate_candidates(session: Session, tenant_id: str, exclude: str | None = None) -> list[tuple[str, str]]:
    """``(id, phash)`` of the tenant's assets that have key-frame hashes, newest first (bounded)."""
    stmt = select(AssetRow.id, AssetRow.phash).where(AssetRow.tenant_id == tenant_id, AssetRow.phash.is_not(None))
    if exclude is not None:
        stmt = stmt.where(AssetRow.id != exclude)
    rows = session.execute(stmt.order_by(AssetRow.id.desc()).limit(MAX_DUPLICATE_CANDIDATES)).all()
    return [(str(a), str(p)) for a, p in rows]
