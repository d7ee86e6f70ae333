"""Admission: a VideoRequest from a tenant becomes a queued job, or a 4xx naming the problem."""

from __future__ import annotations

import secrets
from pathlib import Path

from sqlalchemy.exc import IntegrityError

from reelfoundry.errors import BudgetExceeded, InvalidParameter, PolicyDenied
from reelfoundry.finops.estimate import estimate_usd
from reelfoundry.platform import Platform
from reelfoundry.portfolio.registry import resolve_params
from reelfoundry.schema import VideoRequest
from reelfoundry.store import assets as assetstore
from reelfoundry.store import audit
from reelfoundry.store import budgets as budgetstore
from reelfoundry.store import jobs as jobstore
from reelfoundry.store.events import append_event
from reelfoundry.store.keys import Principal
from reelfoundry.store.tables import JobRow, utcnow


def _input_paths(platform: Platform, tenant_id: str, asset_ids: list[str]) -> tuple[Path, ...]:
    if not asset_ids:
        return ()
    with platform.db.read() as session:
        keys = assetstore.input_keys(session, tenant_id, asset_ids)
    return tuple(platform.storage.path(key) for key in keys)


def _log_refusal(
    platform: Platform, principal: Principal, action: str, subject: str | None, data: dict[str, object]
) -> None:
    """Audit a refused submission in a transaction of its own (the submission's own is rolled back)."""
    with platform.db.write() as session:
        audit.append_by(session, principal, action, subject=subject, data=data)


def admit(
    platform: Platform, principal: Principal, request: VideoRequest, idempotency_key: str | None
) -> tuple[JobRow, bool]:
    """Validate and queue; returns (job, created). A replayed Idempotency-Key returns the earlier job."""
    started = utcnow()
    body_hash = jobstore.request_hash(request.model_dump(mode="json"))
    if idempotency_key is not None:
        with platform.db.read() as session:
            existing = jobstore.find_idempotent(session, principal.tenant_id, idempotency_key, body_hash)
        if existing is not None:
            return existing, False
    if request.webhook_url is not None:
        # Refused here with a 422 naming the field; the dispatcher checks the address again before each send.
        platform.outbound.check(str(request.webhook_url), "webhook_url")
    try:
        platform.policy.check(request)
        card = platform.portfolio.choose(request)
    except PolicyDenied as denied:
        _log_refusal(platform, principal, "policy.denied", None, {"rule": denied.rule, "request_sha256": body_hash})
        raise
    if request.seed is None:
        request = request.model_copy(update={"seed": secrets.randbelow(2**32)})
    params = resolve_params(card, request, _input_paths(platform, principal.tenant_id, request.inputs))
    platform.portfolio.backend(card).check_inputs(params)
    estimate = estimate_usd(card, params, platform.rates, timeout_s=platform.settings.job_timeout_s)
    ceiling = request.constraints.max_cost_usd
    if ceiling is not None and estimate > ceiling:
        raise InvalidParameter(
            "constraints.max_cost_usd",
            f"this job is estimated at ${format(estimate, 'f')}, over constraints.max_cost_usd ${ceiling}",
        )
    labels = request.labels
    try:
        with platform.db.write() as session:
            if idempotency_key is not None:
                existing = jobstore.find_idempotent(session, principal.tenant_id, idempotency_key, body_hash)
                if existing is not None:
                    return existing, False
            crossed = budgetstore.reserve(session, principal.tenant_id, labels.project, labels.campaign, estimate)
            row = jobstore.create_job(
                session,
                tenant_id=principal.tenant_id,
                request=request,
                model=card.id,
                max_attempts=platform.settings.max_attempts,
                body_hash=body_hash,
                idempotency_key=idempotency_key,
                submitted_by=principal.key_id,
                estimated_usd=estimate,
            )
            for budget, standing in crossed:
                warning = {
                    "budget_id": budget.id,
                    "budget": budget.name,
                    "limit_usd": format(budget.limit_usd, "f"),
                    "spent_usd": format(standing.spent, "f"),
                    "reserved_usd": format(standing.reserved + estimate, "f"),
                }
                append_event(session, row, "budget.exceeded", warning)
                audit.append_by(
                    session,
                    principal,
                    "budget.exceeded",
                    subject=budget.id,
                    data={**warning, "job_id": row.id},
                )
            audit.append_by(
                session,
                principal,
                "job.submitted",
                subject=row.id,
                data={"model": card.id, "request_sha256": body_hash},
            )
    except BudgetExceeded as refused:
        facts = {"estimate_usd": refused.extra.get("estimate_usd"), "request_sha256": body_hash}
        _log_refusal(platform, principal, "budget.denied", str(refused.extra.get("budget_id")), facts)
        raise
    except IntegrityError:
        # Two requests with one new key raced; the other one won. Return its job.
        if idempotency_key is None:
            raise
        with platform.db.read() as session:
            existing = jobstore.find_idempotent(session, principal.tenant_id, idempotency_key, body_hash)
        assert existing is not None
        return existing, False
    if platform.engine is not None:
        platform.engine.wake()
    platform.tracer.record("job.admit", row.id, started, utcnow(), model=card.id, tenant=principal.tenant_name)
    return row, True
