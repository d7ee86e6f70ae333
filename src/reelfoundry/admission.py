"""Admission: a VideoRequest from a tenant becomes a queued job, or a 4xx naming the problem."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

from sqlalchemy.exc import IntegrityError

from reelfoundry.errors import BudgetExceeded, InvalidParameter, PolicyDenied
from reelfoundry.events.pgnotify import notify_jobs
from reelfoundry.localfiles import temp_dir
from reelfoundry.platform import Platform
from reelfoundry.portfolio.base import visible_to
from reelfoundry.routing import plan
from reelfoundry.routing.state import router_state, work_params
from reelfoundry.schema import ModelCard, RoutePlan, VideoRequest
from reelfoundry.store import assets as assetstore
from reelfoundry.store import audit
from reelfoundry.store import budgets as budgetstore
from reelfoundry.store import jobs as jobstore
from reelfoundry.store.events import append_event
from reelfoundry.store.keys import Principal
from reelfoundry.store.tables import JobRow, utcnow


@contextlib.contextmanager
def _local_inputs(platform: Platform, tenant_id: str, asset_ids: list[str]) -> Iterator[tuple[Path, ...]]:
    """Local copies of a request's input images while the block lasts, for ``check_inputs`` (each an upload, so at
    most ``max_upload_bytes``; the local store lends its own files). InvalidParameter naming ``inputs[i]`` for one
    not in the tenant or gone from storage; StorageUnavailable (503) when the store cannot be read."""
    if not asset_ids:
        yield ()
        return
    with platform.db.read() as session:
        keys = assetstore.input_keys(session, tenant_id, asset_ids)
    scratch = temp_dir(platform.settings.data_dir)
    with contextlib.ExitStack() as stack:
        paths = []
        for i, key in enumerate(keys):
            try:
                paths.append(stack.enter_context(platform.storage.local_copy(key, scratch)))
            except FileNotFoundError:
                raise InvalidParameter(
                    f"inputs[{i}]", f"inputs[{i}]: the content of {asset_ids[i]!r} is missing"
                ) from None
        yield tuple(paths)


def _log_refusal(
    platform: Platform, principal: Principal, action: str, subject: str | None, data: dict[str, object]
) -> None:
    """Audit a refused submission in a transaction of its own (the submission's own is rolled back)."""
    with platform.db.write() as session:
        audit.append_by(session, principal, action, subject=subject, data=data)


def _route(platform: Platform, principal: Principal, request: VideoRequest) -> tuple[RoutePlan, dict[str, ModelCard]]:
    """The RoutePlan of a request (its seed fixed) and the cards it was made from; a tenant budget nothing fits is
    the budget's own 402."""
    platform.portfolio.refresh(platform.db)
    # One reading of the portfolio: another request's refresh may change it (a card deleted, or added again with
    # other limits) before this job is stored, and the job must keep the cards its plan was made from.
    # A fine-tuned model is its tenant's alone: to the others it does not exist (named, it is an unknown model).
    cards = {k: c for k, c in platform.portfolio.cards.items() if visible_to(c, principal.tenant_id)}
    with platform.db.read() as session:
        state = router_state(platform, session, principal.tenant_id, request)
    try:
        return plan(request, cards, state), cards
    except BudgetExceeded as refused:
        # Name the budget, its standing and the cheapest estimate, as a reservation would.
        with platform.db.read() as session:
            budgetstore.reserve(
                session,
                principal.tenant_id,
                request.labels.project,
                request.labels.campaign,
                Decimal(refused.extra["estimate_usd"]),
            )
        raise


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
    if request.seed is None:
        request = request.model_copy(update={"seed": secrets.randbelow(2**32)})
    try:
        platform.policy.check(request)
        route, cards = _route(platform, principal, request)
    except PolicyDenied as denied:
        _log_refusal(platform, principal, "policy.denied", None, {"rule": denied.rule, "request_sha256": body_hash})
        raise
    card = cards[route.chosen]
    chosen = route.candidate(card.id)
    assert chosen.params is not None and chosen.estimated_usd is not None
    with _local_inputs(platform, principal.tenant_id, request.inputs) as inputs:
        platform.portfolio.backend(card).check_inputs(work_params(request, chosen.params, inputs))
    estimate = chosen.estimated_usd
    route_cards = {m: cards[m].model_dump(mode="json") for m in (route.chosen, *route.fallbacks)}
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
                route=route,
                route_cards=route_cards,
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
                data={"model": card.id, "request_sha256": body_hash, "route": route.reason},
            )
            notify_jobs(session)  # engines in other processes (the scheduler) wake when this commits
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
