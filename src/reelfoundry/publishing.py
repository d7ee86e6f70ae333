"""The review gate: a person's decision on an asset, and publication of approved assets.

Nothing leaves the platform through a delivery URL until a reviewer or admin (not the key that made
it, unless the tenant allows) has approved it. Publishing signs a second C2PA manifest onto a copy of
the file, recording that review, and hands out a signed, expiring URL to that copy.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session

from reelfoundry.assets import keys
from reelfoundry.errors import InvalidTransition
from reelfoundry.governance.review import check_transition, decide
from reelfoundry.localfiles import temp_dir
from reelfoundry.platform import Platform
from reelfoundry.provenance.manifest import sign_review
from reelfoundry.schema import Asset, Publication, ReviewCreate, ReviewState
from reelfoundry.store import assets as assetstore
from reelfoundry.store import audit
from reelfoundry.store import pending as pendingstore
from reelfoundry.store.events import append_event
from reelfoundry.store.keys import Principal
from reelfoundry.store.tables import ApiKeyRow, AssetRow, JobRow, TenantRow

log = logging.getLogger(__name__)


def comment_sha256(comment: str) -> str:
    """The digest of a review comment that manifests and the audit log carry instead of its text."""
    return hashlib.sha256(comment.encode()).hexdigest()


def review_asset(platform: Platform, principal: Principal, asset_id: str, body: ReviewCreate) -> Asset:
    """Record a reviewer's decision: pending_review → approved | rejected (403/404/409 otherwise)."""
    with platform.db.write() as session:
        row = assetstore.get_asset(session, principal.tenant_id, asset_id)
        tenant = session.get(TenantRow, principal.tenant_id)
        assert tenant is not None
        target = decide(
            ReviewState(row.review_state),
            body.decision,
            reviewer_key_id=principal.key_id,
            created_by=row.created_by,
            allow_self_approval=tenant.allow_self_approval,
        )
        assetstore.record_review(
            session,
            row,
            target,
            reviewer_key_id=principal.key_id,
            reviewer_role=principal.role,
            comment=body.comment,
        )
        reviewer_key = session.get(ApiKeyRow, principal.key_id)
        facts = {
            "decision": body.decision.value,
            "review_state": target.value,
            "reviewer_role": principal.role.value,
            "comment_sha256": comment_sha256(body.comment),
            # The self-approval rule compares keys; an admin who made the asset could mint a reviewer
            # key and approve with it. Flag that here, where an auditor looks.
            "reviewer_key_made_by_creator": bool(
                reviewer_key and row.created_by and reviewer_key.created_by == row.created_by
            ),
        }
        audit.append_by(session, principal, "asset.reviewed", subject=row.id, data=facts)
        _job_event(session, row, f"asset.{target.value}", {"asset_id": row.id, **facts})
        return assetstore.to_asset(row)


def publish_asset(platform: Platform, principal: Principal, asset_id: str) -> Publication:
    """Publish an approved asset (once) and hand out a fresh delivery URL; 409 unless approved or published, and
    409 ``rights-expired`` (naming ``rights_expires_at``) once the asset's rights have expired.

    The URL starts with ``public_base_url`` when set (a proxy or CDN in front), else with this server's
    own address (``Settings.delivery_base_url``), never with the Host header the request came with.
    """
    base_url = platform.settings.delivery_base_url
    with platform.db.read() as session:
        row = assetstore.get_asset(session, principal.tenant_id, asset_id)
    # An asset whose rights have run out never goes out: not published, nor a fresh URL to an earlier publication.
    assetstore.check_publishable(row, datetime.now(UTC))
    first = False
    if row.review_state != ReviewState.published.value:
        check_transition(ReviewState(row.review_state), ReviewState.published)
        row, first = _publish(platform, principal, row)
    if not first:
        with platform.db.write() as session:
            audit.append_by(
                session,
                principal,
                "asset.delivery_url_issued",
                subject=row.id,
                data={"published_sha256": row.published_sha256},
            )
    assert row.published_sha256 is not None and row.published_at is not None and row.published_bytes is not None
    url = platform.delivery.issue(row.id, row.published_sha256)
    return Publication(
        asset_id=row.id,
        url=base_url.rstrip("/") + url.path,
        expires_at=url.expires_at,
        published_at=row.published_at,
        sha256=row.published_sha256,
        bytes=row.published_bytes,
    )


def _publish(platform: Platform, principal: Principal, row: AssetRow) -> tuple[AssetRow, bool]:
    """Sign the review manifest onto a copy of the file, store it, and move the asset to published.

    Returns the published row and whether this call published it (False: a concurrent call did first).
    """
    ext = keys.extension(row.media_type)
    key = keys.published(row.tenant_id, row.id, row.media_type)
    published_at = datetime.now(UTC)
    review = {
        "asset_id": row.id,
        "job_id": row.job_id,
        "decision": "approve",
        "reviewer_role": row.reviewer_role,
        "comment_sha256": comment_sha256(row.review_comment or ""),
        "reviewed_at": row.reviewed_at.isoformat() if row.reviewed_at else None,
        "published_at": published_at.isoformat(),
    }
    scratch = temp_dir(platform.settings.data_dir)
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        out = Path(tmp) / f"{row.id}.{ext}"
        with platform.storage.local_copy(row.storage_key, scratch) as original:
            sign_review(
                original,
                out,
                platform.credentials,
                media_type=row.media_type,
                title=f"{row.id}.{ext}",
                review=review,
            )
        data = out.read_bytes()
        digest, size = hashlib.sha256(data).hexdigest(), len(data)
        with platform.db.write() as session:  # recorded first: a process that dies after the put leaves no orphan
            pendingstore.record(session, [key], job_id=None, attempt=0, node=platform.node, now=published_at)
        platform.storage.put_file(key, out, row.media_type)
    try:
        with platform.db.write() as session:
            current = assetstore.get_asset(session, row.tenant_id, row.id)
            check_transition(ReviewState(current.review_state), ReviewState.published)
            assetstore.record_publication(session, current, key=key, sha256=digest, size=size, at=published_at)
            pendingstore.settle(session, [key])
            facts = {"published_sha256": digest, "bytes": size}
            audit.append_by(session, principal, "asset.published", subject=row.id, data=facts)
            _job_event(session, current, "asset.published", {"asset_id": row.id, **facts})
            return current, True
    except InvalidTransition:
        pendingstore.discard(platform.db, platform.storage, [key])
        # Another request published it first: hand out a URL to that rendition.
        with platform.db.read() as session:
            current = assetstore.get_asset(session, row.tenant_id, row.id)
        if current.review_state == ReviewState.published.value:
            return current, False
        raise
    except BaseException:
        pendingstore.discard(platform.db, platform.storage, [key])
        raise


def _job_event(session: Session, row: AssetRow, type_: str, data: dict[str, object]) -> None:
    """Tell the job's event stream and webhook about its asset's review (uploads have no job)."""
    if row.job_id is None:
        return
    job = session.get(JobRow, row.job_id, with_for_update=True)
    if job is not None:
        append_event(session, job, type_, dict(data))
