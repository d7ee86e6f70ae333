"""store.finetunes on SQLite and PostgreSQL: the clips an attempt may read are checked again when it starts (an
asset restricted, expired or un-approved since submission is dropped), and captions come from the DAM metadata,
else the prompt that generated the clip."""

from __future__ import annotations

from datetime import timedelta

from reelfoundry.ids import new_id
from reelfoundry.schema import VideoRequest
from reelfoundry.store import Database
from reelfoundry.store import finetunes as finetunestore
from reelfoundry.store import jobs as jobstore
from reelfoundry.store.tables import AssetRow, CollectionAssetRow, CollectionRow, FinetuneRow, utcnow


def _asset(session: object, tenant: str, **kw: object) -> AssetRow:
    job = jobstore.create_job(
        session,  # type: ignore[arg-type]
        tenant_id=tenant,
        request=VideoRequest(prompt=f"a red circle {new_id()}"),
        model="template",
        max_attempts=1,
        body_hash="h",
    )
    row = AssetRow(
        id=new_id(),
        tenant_id=tenant,
        job_id=job.id,
        media_type="video/mp4",
        storage_key=f"{tenant}/{new_id()}.mp4",
        bytes=1,
        sha256="0" * 64,
        review_state="approved",
        created_at=utcnow(),
        **kw,
    )
    session.add(row)  # type: ignore[attr-defined]
    return row


def test_clips_are_checked_again_when_an_attempt_starts(database: Database, tenant_ids: tuple[str, str]) -> None:
    tenant = tenant_ids[0]
    now = utcnow()
    with database.write() as session:
        keep = _asset(session, tenant, description="an acme coral star moving up")
        restricted = _asset(session, tenant)
        expiring = _asset(session, tenant, rights_expires_at=now + timedelta(hours=1))
        unapproved = _asset(session, tenant)
        collection = CollectionRow(id=new_id(), tenant_id=tenant, name="brand", created_at=now)
        session.add(collection)
        session.flush()
        for a in (keep, restricted, expiring, unapproved):
            session.add(CollectionAssetRow(collection_id=collection.id, asset_id=a.id, added_at=now))
        finetune = FinetuneRow(
            id=new_id(),
            tenant_id=tenant,
            name="acme",
            base="builtin",
            collection_id=collection.id,
            params={},
            state="queued",
            assets_used=[keep.id, restricted.id, expiring.id, unapproved.id],
            created_at=now,
        )
        session.add(finetune)
        session.flush()
        assert [a.id for a, _ in finetunestore.clips_now(session, finetune, now)] == [
            keep.id,
            restricted.id,
            expiring.id,
            unapproved.id,
        ]
        restricted.usage_restrictions = ["no-training"]
        unapproved.review_state = "rejected"
        session.flush()
        later = now + timedelta(hours=2)  # the rights of `expiring` have run out by then
        clips = finetunestore.clips_now(session, finetune, later)
        assert [(a.id, text) for a, text in clips] == [(keep.id, "an acme coral star moving up")]
        # Without a description or title, the caption is the prompt that generated the clip.
        keep.description = None
        session.flush()
        (only,) = finetunestore.clips_now(session, finetune, later)
        assert only[1].startswith("a red circle ")
