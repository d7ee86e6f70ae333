"""/v1/jobs: submit, list, read, cancel, and follow a job's events (SSE)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from reelfoundry.admission import admit
from reelfoundry.api.deps import Canceller, Cursor, Limit, PlatformDep, Reader, Submitter
from reelfoundry.errors import BadRequest
from reelfoundry.platform import Platform
from reelfoundry.schema import Event, Job, JobState, Page, VideoRequest
from reelfoundry.store import costs as coststore
from reelfoundry.store import jobs as jobstore
from reelfoundry.store.events import events_after, to_event

router = APIRouter(prefix="/jobs", tags=["jobs"])

HEARTBEAT_S = 15.0
MAX_EVENT_ID = 2**63 - 1


@router.post("", status_code=201, response_model=Job, summary="Submit a video request")
def submit_job(
    request: VideoRequest,
    platform: PlatformDep,
    principal: Submitter,
    idempotency_key: Annotated[
        str | None, Header(min_length=1, max_length=255, description="Same key + same body → the same job.")
    ] = None,
) -> Response:
    """Queue a job. Replaying an Idempotency-Key with the same body returns the first job (200)."""
    row, created = admit(platform, principal, request, idempotency_key)
    headers = {"Location": f"/v1/jobs/{row.id}"}
    if not created:
        headers["Idempotent-Replayed"] = "true"
    # The Job is built from validated parts; serialising it here spares FastAPI a second validation
    # on the hottest endpoint (the response_model above still documents it).
    body = jobstore.to_job(row).model_dump_json()
    return Response(body, status_code=201 if created else 200, headers=headers, media_type="application/json")


@router.get("", response_model=Page[Job], summary="List jobs, newest first")
def list_jobs(
    platform: PlatformDep, principal: Reader, cursor: Cursor = None, limit: Limit = 50, state: JobState | None = None
) -> Page[Job]:
    """A page of the tenant's jobs."""
    with platform.db.read() as session:
        rows, next_cursor = jobstore.list_jobs(session, principal.tenant_id, cursor=cursor, limit=limit, state=state)
        costs = coststore.costs_of(session, [r.id for r in rows if JobState(r.state).final])
        return Page[Job](items=[jobstore.to_job(r, costs.get(r.id)) for r in rows], next_cursor=next_cursor)


@router.get("/{job_id}", response_model=Job, summary="Read a job")
def get_job(job_id: str, platform: PlatformDep, principal: Reader) -> Job:
    """One job of the tenant."""
    with platform.db.read() as session:
        row = jobstore.get_job(session, principal.tenant_id, job_id)
        return jobstore.to_job(row, coststore.costs_of(session, [row.id]).get(row.id))


@router.post("/{job_id}/cancel", status_code=202, response_model=Job, summary="Cancel a job")
def cancel_job(job_id: str, platform: PlatformDep, principal: Canceller) -> Job:
    """Cancel a queued job now; a running one stops at its next step boundary."""
    with platform.db.write() as session:
        row = jobstore.request_cancel(session, principal.tenant_id, job_id)
        return jobstore.to_job(row, coststore.costs_of(session, [row.id]).get(row.id))


def _fetch(platform: Platform, tenant_id: str, job_id: str, after: int) -> tuple[list[Event], bool]:
    with platform.db.read() as session:
        final = JobState(jobstore.get_job(session, tenant_id, job_id).state).final
        # The final event commits with the final state, so reading the state first never misses it.
        return [to_event(r) for r in events_after(session, job_id, after)], final


@router.get(
    "/{job_id}/events",
    summary="Follow a job's events (Server-Sent Events)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "SSE stream; ends after the final event."}},
)
async def stream_job_events(
    job_id: str,
    request: Request,
    platform: PlatformDep,
    principal: Reader,
    after: Annotated[
        int, Query(ge=0, le=2**63 - 1, description="Send events with id greater than this. Default 0.")
    ] = 0,
    last_event_id: Annotated[str | None, Header(max_length=32)] = None,
) -> StreamingResponse:
    """Each event is ``id``, ``event`` (its type) and ``data`` (the Event as JSON)."""
    if last_event_id is not None:
        if not re.fullmatch(r"[0-9]{1,18}", last_event_id):
            raise BadRequest(f"Last-Event-ID must be an event id, got {last_event_id!r}", parameter="Last-Event-ID")
        after = max(after, int(last_event_id))
    first = await run_in_threadpool(_fetch, platform, principal.tenant_id, job_id, after)  # 404 before streaming
    poll = platform.settings.poll_interval_s

    async def stream() -> AsyncIterator[str]:
        nonlocal after
        events, final = first
        beat = time.monotonic()
        yield "retry: 1000\n\n"
        while True:
            for ev in events:
                after = ev.id
                yield f"id: {ev.id}\nevent: {ev.type}\ndata: {json.dumps(ev.model_dump(mode='json'))}\n\n"
            if final and not events:
                return
            if time.monotonic() - beat > HEARTBEAT_S:
                beat = time.monotonic()
                yield ": keep-alive\n\n"
            if await request.is_disconnected():
                return
            if not events:
                await platform.changes.wait(poll)
            events, final = await run_in_threadpool(_fetch, platform, principal.tenant_id, job_id, after)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)
