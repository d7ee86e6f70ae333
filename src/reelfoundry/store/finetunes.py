"""Fine-tunes in the database: each is a job of kind ``finetune`` (queued, scheduled, progress, cancel, cost record,
events — the job machinery) plus a ``finetunes`` row that says what it trains and what it made.

Which assets it trains on is decided at submission (the collection's approved, non-expired, training-allowed
assets, :func:`reelfoundry.store.assets.training_assets`) and checked again when an attempt starts: an asset whose
rights expired, or that was restricted or un-approved meanwhile, is dropped then, never read.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from reelfoundry.errors import Conflict, InvalidParameter
from reelfoundry.ids import new_id
from reelfoundry.schema import JobError, ModelCard, VideoRequest
from reelfoundry.schema.finetune import Finetune, FinetuneCreate, FinetuneState

__all__ = ["KIND", "FinetuneState"]
from reelfoundry.store import assets as assetstore
from reelfoundry.store import jobs as jobstore
from reelfoundry.store.audit import append_by
from reelfoundry.store.keys import Principal
from reelfoundry.store.owned import owned
from reelfoundry.store.pagination import page_of, paginate
from reelfoundry.store.tables import AssetRow, FinetuneRow, JobRow, utcnow

#: The job kind of a fine-tune.
KIND = "finetune"
#: Clips a fine-tune may train on at most.
MAX_CLIPS = 512


def create(
    session: Session,
    principal: Principal,
    body: FinetuneCreate,
    base: ModelCard,
    collection_id: str,
    taken: set[str],
    max_attempts: int,
) -> FinetuneRow:
    """Queue a fine-tune of ``base`` on the collection (its job and its row, audited). Conflict when ``body.name``
    is a model id in use (``taken``) or another fine-tune's; InvalidParameter when the collection has nothing
    training may read."""
    if body.name in taken or session.scalar(select(FinetuneRow.id).where(FinetuneRow.name == body.name)):
        raise Conflict(f"the model id {body.name!r} is taken: choose another name")
    assets = assetstore.training_assets(session, principal.tenant_id, collection_id, utcnow())
    assets = [a for a in assets if a.media_type.startswith(("video/", "image/"))][:MAX_CLIPS]
    if not assets:
        raise InvalidParameter(
            "collection",
            "the collection has no asset training may read (approved, rights not expired, no 'no-training')",
        )
    params = {"rank": body.rank, "steps": body.steps, "lr": body.lr, "seed": body.seed}
    request = VideoRequest(prompt=f"fine-tune {body.name} from {base.id}", model=base.id, seed=body.seed)
    job = jobstore.create_job(
        session,
        tenant_id=principal.tenant_id,
        request=request,
        model=base.id,
        max_attempts=max_attempts,
        body_hash=jobstore.request_hash({"finetune": body.model_dump(mode="json")}),
        submitted_by=principal.key_id,
        kind=KIND,
    )
    row = FinetuneRow(
        id=new_id(),
        tenant_id=principal.tenant_id,
        job_id=job.id,
        name=body.name,
        base=base.id,
        collection_id=collection_id,
        params=params,
        state=FinetuneState.queued.value,
        assets_used=[a.id for a in assets],
        created_by=principal.key_id,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    facts = {"name": body.name, "base": base.id, "collection": collection_id, "assets": len(assets), **params}
    append_by(session, principal, "finetune.submitted", subject=row.id, data=facts)
    return row


def of_job(session: Session, job_id: str) -> FinetuneRow | None:
    """The fine-tune a job runs."""
    return session.scalar(select(FinetuneRow).where(FinetuneRow.job_id == job_id))


def get(session: Session, tenant_id: str, finetune_id: str) -> FinetuneRow:
    """A fine-tune of the tenant (NotFound otherwise)."""
    return owned(session, FinetuneRow, tenant_id, finetune_id, "fine-tune")


def page(session: Session, tenant_id: str, cursor: str | None, limit: int) -> tuple[list[FinetuneRow], str | None]:
    """A page of the tenant's fine-tunes, newest first."""
    stmt = select(FinetuneRow).where(FinetuneRow.tenant_id == tenant_id)
    return page_of(list(session.scalars(paginate(stmt, FinetuneRow.id, cursor, limit))), limit)


def clips_now(session: Session, row: FinetuneRow, now: datetime) -> list[tuple[AssetRow, str]]:
    """The fine-tune's assets that training may still read at ``now``, each with its caption (its description,
    else title, else the prompt that generated it, else its tags); in the order chosen at submission."""
    allowed = {a.id: a for a in assetstore.training_assets(session, row.tenant_id, row.collection_id or "", now)}
    out = []
    for asset_id in row.assets_used or []:
        asset = allowed.get(asset_id)
        if asset is not None:
            out.append((asset, caption(session, asset)))
    return out


def caption(session: Session, asset: AssetRow) -> str:
    """What a clip shows, in words, for training."""
    for text in (asset.description, asset.title):
        if text and text.strip():
            return text.strip()
    if asset.job_id is not None:
        job = session.get(JobRow, asset.job_id)
        if job is not None and (job.request or {}).get("prompt"):
            return str(job.request["prompt"])
    return ", ".join(asset.tags or []) or ""


def mark(session: Session, job_id: str, state: FinetuneState, **values: Any) -> FinetuneRow | None:
    """Set the fine-tune of ``job_id`` to ``state`` (and more columns)."""
    row = of_job(session, job_id)
    if row is None:
        return None
    row.state = state.value
    for key, value in values.items():
        setattr(row, key, value)
    if state in (FinetuneState.succeeded, FinetuneState.failed, FinetuneState.cancelled):
        row.finished_at = row.finished_at or utcnow()
    session.flush()
    return row


def to_finetune(row: FinetuneRow, job: JobRow | None) -> Finetune:
    """The public view; the state follows the job's."""
    state = FinetuneState(job.state) if job is not None and job.state in FinetuneState.__members__ else None
    error = JobError(type=job.error_type, detail=job.error_detail or "") if job and job.error_type else None
    return Finetune(
        id=row.id,
        tenant_id=row.tenant_id,
        name=row.name,
        base=row.base,
        collection_id=row.collection_id,
        state=state or FinetuneState(row.state),
        params=row.params,
        job_id=row.job_id,
        progress=job.progress if job is not None else 0.0,
        assets_used=list(row.assets_used or []),
        adapter_sha256=row.adapter_sha256,
        evaluation=row.evaluation,
        error=error,
        created_at=row.created_at,
        finished_at=row.finished_at or (job.finished_at if job is not None else None),
    )
