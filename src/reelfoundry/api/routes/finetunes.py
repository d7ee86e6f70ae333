"""/v1/finetunes: fine-tune a model on a collection (a job of kind finetune), read and cancel it."""

from __future__ import annotations

from fastapi import APIRouter, Response

from reelfoundry.api.deps import Canceller, Cursor, Limit, PlatformDep, Reader, TenantAdmin
from reelfoundry.events.pgnotify import notify_jobs
from reelfoundry.schema import Page
from reelfoundry.schema.finetune import Finetune, FinetuneCreate
from reelfoundry.store import collections as collectionstore
from reelfoundry.store import finetunes as finetunestore
from reelfoundry.store import jobs as jobstore
from reelfoundry.store import models as modelstore
from reelfoundry.store.tables import JobRow

router = APIRouter(prefix="/finetunes", tags=["finetunes"])


@router.post("", status_code=201, response_model=Finetune, summary="Fine-tune a model on a collection")
def create_finetune(body: FinetuneCreate, platform: PlatformDep, principal: TenantAdmin) -> Response:
    """Queue a LoRA fine-tune of ``base`` on the collection's approved, training-allowed assets; when it succeeds,
    ``name`` is a model requests can name. Its job (``job_id``) reports progress and can be cancelled."""
    base = platform.portfolio.card(body.base)
    with platform.db.write() as session:
        collection = collectionstore.get_collection(session, principal.tenant_id, body.collection)
        taken = set(platform.portfolio.cards) | modelstore.stored_card_ids(session)
        row = finetunestore.create(session, principal, body, base, collection.id, taken, platform.settings.max_attempts)
        job = session.get(JobRow, row.job_id)
        result = finetunestore.to_finetune(row, job)
        notify_jobs(session)
    if platform.engine is not None:
        platform.engine.wake()
    return Response(
        result.model_dump_json(),
        status_code=201,
        headers={"Location": f"/v1/finetunes/{result.id}"},
        media_type="application/json",
    )


@router.get("", response_model=Page[Finetune], summary="List fine-tunes, newest first")
def list_finetunes(
    platform: PlatformDep, principal: Reader, cursor: Cursor = None, limit: Limit = 50
) -> Page[Finetune]:
    """A page of the tenant's fine-tunes."""
    with platform.db.read() as session:
        rows, next_cursor = finetunestore.page(session, principal.tenant_id, cursor, limit)
        items = [finetunestore.to_finetune(r, session.get(JobRow, r.job_id) if r.job_id else None) for r in rows]
        return Page[Finetune](items=items, next_cursor=next_cursor)


@router.get("/{finetune_id}", response_model=Finetune, summary="Read a fine-tune")
def get_finetune(finetune_id: str, platform: PlatformDep, principal: Reader) -> Finetune:
    """One fine-tune of the tenant, its state following its job's."""
    with platform.db.read() as session:
        row = finetunestore.get(session, principal.tenant_id, finetune_id)
        return finetunestore.to_finetune(row, session.get(JobRow, row.job_id) if row.job_id else None)


@router.post("/{finetune_id}/cancel", status_code=202, response_model=Finetune, summary="Cancel a fine-tune")
def cancel_finetune(finetune_id: str, platform: PlatformDep, principal: Canceller) -> Finetune:
    """Cancel it: a queued one at once, a running one at its next optimiser step; no adapter is registered."""
    with platform.db.write() as session:
        row = finetunestore.get(session, principal.tenant_id, finetune_id)
        assert row.job_id is not None
        job = jobstore.request_cancel(session, principal.tenant_id, row.job_id)
        if job.state == "cancelled":
            finetunestore.mark(session, job.id, finetunestore.FinetuneState.cancelled)
        return finetunestore.to_finetune(row, job)
