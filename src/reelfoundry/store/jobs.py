"""The job queue and lifecycle, in the database.

Every function runs inside the caller's transaction (``Database.write()``) and
changes a job only with a conditional UPDATE, so a stale worker (a re-queued
attempt, a cancelled job) can never overwrite a newer state.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from reelfoundry.assets.objectstore import StorageUnavailable
from reelfoundry.errors import (
    BackendError,
    ConfigurationError,
    IdempotencyConflict,
    InvalidTransition,
    ModelIntegrityError,
)
from reelfoundry.finops.meter import VendorCharge
from reelfoundry.ids import new_id
from reelfoundry.schema import TRANSITIONS, Job, JobError, JobState, RoutePlan, VideoRequest
from reelfoundry.store import assets as assetstore
from reelfoundry.store import lease as leasestore
from reelfoundry.store import models as modelstore
from reelfoundry.store import webhooks as webhookstore
from reelfoundry.store.costs import record_final, to_cost
from reelfoundry.store.events import append_event
from reelfoundry.store.owned import owned
from reelfoundry.store.pagination import page_of, paginate
from reelfoundry.store.tables import AssetRow, CostRecordRow, JobRow, utcnow

PRIORITY = {"interactive": 0, "batch": 1}


def request_hash(body: dict[str, Any]) -> str:
    """Stable hash of a request body, for Idempotency-Key comparison."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def find_idempotent(session: Session, tenant_id: str, key: str, body_hash: str) -> JobRow | None:
    """The job made earlier with this key; IdempotencyConflict if its body differed."""
    row = session.scalar(select(JobRow).where(JobRow.tenant_id == tenant_id, JobRow.idempotency_key == key))
    if row is not None and row.request_hash != body_hash:
        raise IdempotencyConflict(
            f"Idempotency-Key {key!r} was used for a different request body (job {row.id})", job_id=row.id
        )
    return row


def create_job(
    session: Session,
    *,
    tenant_id: str,
    request: VideoRequest,
    model: str,
    max_attempts: int,
    body_hash: str,
    idempotency_key: str | None = None,
    submitted_by: str | None = None,
    estimated_usd: Decimal | None = None,
    route: RoutePlan | None = None,
    route_cards: dict[str, Any] | None = None,
    kind: str = "generate",
) -> JobRow:
    """Insert a queued job and its ``job.queued`` event (``kind``: generate, or finetune for a fine-tune's job)."""
    now = utcnow()
    row = JobRow(
        id=new_id(),
        tenant_id=tenant_id,
        state=JobState.queued.value,
        model=model,
        priority=PRIORITY[request.priority.value],
        request=request.model_dump(mode="json"),
        request_hash=body_hash,
        idempotency_key=idempotency_key,
        project=request.labels.project,
        campaign=request.labels.campaign,
        attempts=0,
        max_attempts=max_attempts,
        progress=0.0,
        cancel_requested=False,
        submitted_by=submitted_by,
        estimated_usd=estimated_usd,
        route=route.model_dump(mode="json") if route is not None else None,
        route_cards=route_cards,
        kind=kind,
        created_at=now,
    )
    session.add(row)
    session.flush()  # the event's foreign key needs the job row first
    data: dict[str, Any] = {"model": model}
    if route is not None:
        data["reason"] = route.reason
    append_event(session, row, "job.queued", data)
    return row


def get_job(session: Session, tenant_id: str, job_id: str) -> JobRow:
    """A job of this tenant, or NotFound (also for other tenants' jobs)."""
    return owned(session, JobRow, tenant_id, job_id, "job")


def list_jobs(
    session: Session, tenant_id: str, *, cursor: str | None, limit: int, state: JobState | None = None
) -> tuple[list[JobRow], str | None]:
    """A page of the tenant's jobs, newest first."""
    stmt = select(JobRow).where(JobRow.tenant_id == tenant_id)
    if state is not None:
        stmt = stmt.where(JobRow.state == state.value)
    rows = list(session.scalars(paginate(stmt, JobRow.id, cursor, limit)))
    return page_of(rows, limit)


def claim_next(session: Session, node: str, lease_until: datetime) -> JobRow | None:
    """Claim the next queued job (priority, then age) for ``node``: one job at a time, as a tool or test takes
    them (the engine claims what the scheduler chose, with :func:`claim_ids`). Rows another claimer holds
    locked are passed over (PostgreSQL ``SKIP LOCKED``)."""
    now = utcnow()
    pick = (
        select(JobRow.id)
        .where(JobRow.state == JobState.queued.value, due(now))
        .order_by(JobRow.priority, JobRow.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    claimed = claim_ids(session, list(session.scalars(pick)), node, lease_until, now=now)
    return claimed[0] if claimed else None


def due(now: datetime) -> Any:
    """The condition a queued job must meet to be claimed at ``now``: no back-off, or one that has passed."""
    return or_(JobRow.not_before.is_(None), JobRow.not_before <= now)


def claim_ids(
    session: Session,
    ids: Sequence[str],
    node: str,
    lease_until: datetime,
    now: datetime | None = None,
    fence: leasestore.Fence | None = None,
) -> list[JobRow]:
    """Atomically move those of ``ids`` that are still queued to running for ``node``, each with its
    ``job.running`` event; the rows, in the order of ``ids``.

    The scheduler chose ``ids`` from a window it read earlier: a job another node has taken since, one
    cancelled meanwhile, or one whose back-off (``not_before``) has not passed at ``now`` is simply not
    claimed. PostgreSQL: ``FOR UPDATE SKIP LOCKED`` in the subquery
    passes over rows another claimer holds locked instead of waiting for it; SQLite: the write lock plus
    ``state = 'queued'`` in the outer UPDATE make the claim exclusive.

    With a ``fence`` (an elected scheduler's), the claim is refused with
    :class:`~reelfoundry.store.lease.Deposed` unless that lease is still held under its epoch, checked in
    this same transaction.
    """
    if not ids:
        return []
    now = now or utcnow()
    if fence is not None:
        leasestore.check_fence(session, fence)  # the lease runs on the wall clock, whatever ``now`` says
    pick = (
        select(JobRow.id)
        .where(JobRow.id.in_(list(ids)), JobRow.state == JobState.queued.value, due(now))
        .with_for_update(skip_locked=True)
    )
    stmt = (
        update(JobRow)
        .where(JobRow.id.in_(pick), JobRow.state == JobState.queued.value, due(now))
        .values(
            state=JobState.running.value,
            attempts=JobRow.attempts + 1,
            progress=0.0,
            started_at=now,
            worker_node=node,
            lease_until=lease_until,
        )
        .returning(JobRow.id)
        .execution_options(synchronize_session=False)
    )
    claimed = set(session.execute(stmt).scalars())
    if not claimed:
        return []
    found = session.scalars(
        select(JobRow).where(JobRow.id.in_(claimed)).execution_options(populate_existing=True)
    ).all()
    rows = {row.id: row for row in found}
    out = []
    for job_id in dict.fromkeys(ids):
        row = rows.get(job_id)
        if row is not None:
            append_event(session, row, "job.running", {"attempt": row.attempts, "node": node})
            out.append(row)
    return out


@dataclass(frozen=True)
class AttemptUsage:
    """What one attempt used, as the worker measured it."""

    seconds: float
    energy_j: float = 0.0
    energy_method: str = "model"
    #: The attempt ran on a vendor's API, which charged this (priced into the cost record).
    vendor: VendorCharge | None = None
    #: The rates of the node the attempt ran on, when its executor reported them (a Ray node): they become the
    #: job's meter, so the job is priced at the rates of the node its last attempt ran on.
    rates: dict[str, Any] | None = None


def _with_usage(values: dict[str, Any], usage: AttemptUsage | None) -> dict[str, Any]:
    if usage is None:
        return values
    out = {
        **values,
        "device_seconds": JobRow.device_seconds + usage.seconds,
        "energy_j": JobRow.energy_j + usage.energy_j,
        "energy_method": usage.energy_method,
    }
    if usage.rates is not None:
        out["meter"] = usage.rates
    return out


def _cut_short(row: JobRow, now: datetime | None = None) -> AttemptUsage:
    """An attempt that ended without its worker's report (crash, lost lease, shutdown): the device was held
    from its start until now, so that time is charged; its energy is unknown."""
    held = ((now or utcnow()) - row.started_at).total_seconds() if row.started_at else 0.0
    return AttemptUsage(seconds=max(0.0, held), energy_j=0.0, energy_method="unmeasured")


def _running(session: Session, job_id: str, attempt: int, **values: Any) -> JobRow | None:
    """Update a job only if this attempt still holds it; the row, or None if stale."""
    if "state" in values and (JobState.running, JobState(values["state"])) not in TRANSITIONS:
        raise InvalidTransition(f"a running job cannot become {values['state']}")
    stmt = (
        update(JobRow)
        .where(JobRow.id == job_id, JobRow.state == JobState.running.value, JobRow.attempts == attempt)
        .values(**values)
        .returning(JobRow.id)
        .execution_options(synchronize_session=False)
    )
    if session.execute(stmt).scalar_one_or_none() is None:
        return None
    return session.get(JobRow, job_id, populate_existing=True)


def record_progress(
    session: Session, job_id: str, attempt: int, step: int, total: int, lease_until: datetime, *, emit: bool
) -> JobRow | None:
    """Store progress (and extend the lease); None if this attempt no longer holds the job."""
    row = _running(session, job_id, attempt, progress=min(1.0, step / max(total, 1)), lease_until=lease_until)
    if row is not None and emit:
        append_event(session, row, "job.progress", {"step": step, "total": total, "progress": row.progress})
    return row


def renew_leases(session: Session, node: str, job_ids: list[str], lease_until: datetime) -> None:
    """Extend the leases of jobs this node is running."""
    if job_ids:
        session.execute(
            update(JobRow)
            .where(JobRow.id.in_(job_ids), JobRow.worker_node == node, JobRow.state == JobState.running.value)
            .values(lease_until=lease_until)
            .execution_options(synchronize_session=False)
        )


def complete(
    session: Session, job_id: str, attempt: int, asset: AssetRow, usage: AttemptUsage | None = None
) -> JobRow | None:
    """Mark the attempt succeeded and store its asset and cost record, once; None if the attempt was stale."""
    now = utcnow()
    values = dict(state=JobState.succeeded.value, progress=1.0, finished_at=now, asset_id=asset.id, lease_until=None)
    row = _running(session, job_id, attempt, **_with_usage(values, usage))
    if row is None:
        return None
    session.add(asset)
    session.flush()
    # Findable at once by full text (embedded lazily, at the first semantic search); the tenant's endpoint told.
    assetstore.catalogue(session, asset, now, prompt=row.request.get("prompt"))
    webhookstore.enqueue_asset_event(session, asset, "asset.created", now)
    modelstore.record_success(session, row.model)
    record_final(session, row, asset, usage.vendor if usage is not None else None)
    append_event(session, row, "job.succeeded", {"asset_id": asset.id, "attempt": attempt})
    return row


#: The error of an attempt that failed only because the object store was unavailable.
STORAGE_FAILURE = StorageUnavailable.problem_type()


@dataclass(frozen=True)
class StorageRetry:
    """How a storage outage re-queues: up to ``limit`` such failures per job do not use an attempt, each waiting
    ``base_s``·2^n (at most ``max_s``) before the job may be claimed again."""

    limit: int = 10
    base_s: float = 2.0
    max_s: float = 60.0

    def delay_s(self, retries: int) -> float:
        """The back-off after the job's ``retries``-th earlier storage failure (0 for the first)."""
        return float(min(self.max_s, self.base_s * 2 ** min(retries, 30)))


def complete_artifact(
    session: Session, job_id: str, attempt: int, usage: AttemptUsage | None, data: dict[str, Any]
) -> JobRow | None:
    """Mark a job that makes no asset (a fine-tune: its adapter is recorded by the caller in this transaction)
    succeeded, with its cost record, once; None if the attempt was stale."""
    now = utcnow()
    values = dict(state=JobState.succeeded.value, progress=1.0, finished_at=now, lease_until=None)
    row = _running(session, job_id, attempt, **_with_usage(values, usage))
    if row is None:
        return None
    record_final(session, row)
    append_event(session, row, "job.succeeded", {**data, "attempt": attempt})
    return row


@dataclass(frozen=True)
class Health:
    """When a failing model rests: after ``threshold`` backend failures in a row, for ``cooldown_s``."""

    threshold: int = 3
    cooldown_s: float = 60.0


#: Error types that say the model's backend failed, not the request: they count against the model's health and
#: send the job on to its route's next fallback.
MODEL_FAILURES = frozenset(
    {BackendError.problem_type(), ConfigurationError.problem_type(), ModelIntegrityError.problem_type()}
)


def next_fallback(row: JobRow, resting: Collection[str] = ()) -> str | None:
    """The first model after the one the job is on now in its route (chosen, then fallbacks) that is not
    ``resting`` (cooling down), or None."""
    if not row.route:
        return None
    order = [row.route["chosen"], *row.route.get("fallbacks", [])]
    if row.model not in order:
        return None
    return next((m for m in order[order.index(row.model) + 1 :] if m not in resting), None)


def fail(
    session: Session,
    job_id: str,
    attempt: int,
    error: JobError,
    *,
    retry: bool,
    usage: AttemptUsage | None = None,
    health: Health = Health(),
    storage: StorageRetry = StorageRetry(),
    now: datetime | None = None,
) -> JobRow | None:
    """End the attempt with an error: re-queue if ``retry`` and attempts remain, else failed.

    A backend failure (``MODEL_FAILURES``) counts against the model's health and, when the job's route has a
    fallback after the model it is on, re-queues it on that model (``job.rerouted``) whatever ``retry`` says.
    A retryable storage failure (``STORAGE_FAILURE``: the store was down) re-queues the job after a back-off
    (``not_before``) without using an attempt, up to ``storage.limit`` times. A job whose cancellation was
    requested is never re-queued: it ends cancelled.
    """
    current = session.get(JobRow, job_id, populate_existing=True, with_for_update=True)
    if current is None or current.state != JobState.running.value or current.attempts != attempt:
        return None
    if current.cancel_requested:
        return mark_cancelled(session, job_id, attempt, usage)
    if error.type in MODEL_FAILURES:
        modelstore.record_outcome(
            session, current.model, ok=False, threshold=health.threshold, cooldown_s=health.cooldown_s
        )
        failed_model, fallback = current.model, next_fallback(current, modelstore.cooldowns(session))
        if fallback is not None:
            values = dict(state=JobState.queued.value, model=fallback, progress=0.0, lease_until=None, worker_node=None)
            row = _running(session, job_id, attempt, **_with_usage(values, usage))
            assert row is not None
            data = {"attempt": attempt, "from": failed_model, "to": fallback}
            append_event(session, row, "job.rerouted", {**data, "error": error.model_dump()})
            return row
    storage_retries = current.storage_retries or 0
    if retry and error.type == STORAGE_FAILURE and storage_retries < storage.limit:
        delay = storage.delay_s(storage_retries)
        not_before = (now or utcnow()) + timedelta(seconds=delay)
        values = dict(
            state=JobState.queued.value,
            progress=0.0,
            lease_until=None,
            worker_node=None,
            not_before=not_before,
            storage_retries=storage_retries + 1,
        )
        row = _running(session, job_id, attempt, **_with_usage(values, usage))
        assert row is not None
        data = {"attempt": attempt, "error": error.model_dump(), "retry_in_s": delay, "uses_attempt": False}
        append_event(session, row, "job.requeued", data)
        return row
    # Attempts the store's outages took are not counted (see above).
    if retry and current.attempts - storage_retries < current.max_attempts:
        values = dict(state=JobState.queued.value, progress=0.0, lease_until=None, worker_node=None)
        row = _running(session, job_id, attempt, **_with_usage(values, usage))
        assert row is not None
        append_event(session, row, "job.requeued", {"attempt": attempt, "error": error.model_dump()})
        return row
    values = dict(
        state=JobState.failed.value,
        finished_at=utcnow(),
        lease_until=None,
        error_type=error.type,
        error_detail=error.detail,
    )
    row = _running(session, job_id, attempt, **_with_usage(values, usage))
    assert row is not None
    record_final(session, row)
    append_event(session, row, "job.failed", {"attempt": attempt, "error": error.model_dump()})
    return row


def mark_cancelled(session: Session, job_id: str, attempt: int, usage: AttemptUsage | None = None) -> JobRow | None:
    """A running attempt stopped because its job was cancelled."""
    values = dict(state=JobState.cancelled.value, finished_at=utcnow(), lease_until=None)
    row = _running(session, job_id, attempt, **_with_usage(values, usage))
    if row is not None:
        record_final(session, row)
        append_event(session, row, "job.cancelled", {"attempt": attempt})
    return row


def request_cancel(session: Session, tenant_id: str, job_id: str) -> JobRow:
    """Cancel a queued job now, or ask a running one to stop at its next step boundary."""
    row = get_job(session, tenant_id, job_id)
    session.refresh(row, with_for_update=True)
    state = JobState(row.state)
    if state is JobState.queued:
        row.state = JobState.cancelled.value
        row.finished_at = utcnow()
        session.flush()
        record_final(session, row)
        append_event(session, row, "job.cancelled", {"attempt": row.attempts})
    elif state is JobState.running:
        if not row.cancel_requested:
            row.cancel_requested = True
            session.flush()
            append_event(session, row, "job.cancel_requested", {})
    else:
        raise InvalidTransition(f"job {job_id} is already {state.value}; only queued or running jobs can be cancelled")
    return row


def release_node(session: Session, node: str) -> list[JobRow]:
    """On a clean shutdown: put this node's running jobs back in the queue without using an attempt."""
    stmt = select(JobRow).where(JobRow.state == JobState.running.value, JobRow.worker_node == node)
    released = []
    for row in list(session.scalars(stmt.with_for_update())):
        attempt = row.attempts
        usage = _cut_short(row)
        if row.cancel_requested:
            done = mark_cancelled(session, row.id, attempt, usage)
        else:
            values = dict(
                state=JobState.queued.value, attempts=attempt - 1, progress=0.0, lease_until=None, worker_node=None
            )
            done = _running(session, row.id, attempt, **_with_usage(values, usage))
            if done is not None:
                append_event(session, done, "job.requeued", {"attempt": attempt, "reason": "server stopped"})
        if done is not None:
            released.append(done)
    return released


def requeue_lost(
    session: Session, *, node: str | None, now: datetime | None = None, fence: leasestore.Fence | None = None
) -> list[JobRow]:
    """Re-queue running jobs whose worker is gone: this node's (at start-up) or any with an expired lease.

    With a ``fence``, only while that scheduler lease is held (else :class:`~reelfoundry.store.lease.Deposed`)."""
    now = now or utcnow()
    if fence is not None:
        leasestore.check_fence(session, fence)  # the lease runs on the wall clock, whatever ``now`` says
    cond = JobRow.lease_until < now
    if node is not None:
        cond = cond | (JobRow.worker_node == node)
    stmt = select(JobRow).where(JobRow.state == JobState.running.value, cond).with_for_update(skip_locked=True)
    changed = []
    for row in list(session.scalars(stmt)):
        error = JobError(
            type="https://reelfoundry.dev/problems/worker-lost", detail=f"worker {row.worker_node} was lost"
        )
        result = fail(session, row.id, row.attempts, error, retry=True, usage=_cut_short(row, now))
        if result is not None:
            changed.append(result)
    return changed


def to_job(row: JobRow, cost: CostRecordRow | None = None) -> Job:
    """The public schema of a job row (with its cost record once it has ended)."""
    return Job(
        id=row.id,
        tenant_id=row.tenant_id,
        kind=row.kind or "generate",
        state=JobState(row.state),
        request=VideoRequest.model_validate(row.request),
        model=row.model,
        priority="interactive" if row.priority == 0 else "batch",
        attempts=row.attempts,
        max_attempts=row.max_attempts,
        progress=row.progress,
        cancel_requested=row.cancel_requested,
        error=JobError(type=row.error_type, detail=row.error_detail or "") if row.error_type else None,
        asset_id=row.asset_id,
        route=RoutePlan.model_validate(row.route) if row.route else None,
        estimated_usd=row.estimated_usd,
        cost=to_cost(cost) if cost is not None else None,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def lease_deadline(lease_s: float) -> datetime:
    """When a lease taken now runs out."""
    return utcnow() + timedelta(seconds=lease_s)
