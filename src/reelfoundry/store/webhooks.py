"""The webhook outbox: claiming due deliveries fairly, recording attempts, the log, tenants' secrets."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from reelfoundry.events import signing
from reelfoundry.ids import new_id
from reelfoundry.outbound.policy import receiver_of
from reelfoundry.store import assets as assetstore
from reelfoundry.store.events import to_event
from reelfoundry.store.pagination import page_of, paginate
from reelfoundry.store.tables import (
    AssetRow,
    AssetWebhookRow,
    EventRow,
    JobRow,
    TenantRow,
    WebhookDeliveryRow,
    WebhookEndpointRow,
)

#: The events a tenant's endpoint receives.
ASSET_EVENTS = ("asset.created", "asset.metadata_updated", "asset.rights_expiring")


@dataclass(frozen=True)
class Claimed:
    """A delivery this dispatcher holds until ``lease``: where it goes, what it says, who signs it."""

    id: str
    tenant_id: str
    receiver: str
    url: str
    body: bytes
    secrets: tuple[str, ...]
    lease: datetime
    #: "job" (a job event, ``webhook_deliveries``) or "asset" (the tenant endpoint's, ``asset_webhook_deliveries``).
    kind: str = "job"


def signing_secrets(tenant: TenantRow, now: datetime) -> tuple[str, ...]:
    """The secrets that sign a delivery sent ``now``: the current one, and the previous one in its grace period."""
    previous, until = tenant.webhook_secret_previous, tenant.webhook_secret_previous_until
    if previous and until is not None and now < until:
        return tenant.webhook_secret, previous
    return (tenant.webhook_secret,)


def rotate_secret(session: Session, tenant_id: str, grace_s: float, now: datetime) -> TenantRow:
    """A new current secret; the one it replaces keeps signing for ``grace_s`` (any older one stops now)."""
    tenant = session.get(TenantRow, tenant_id, with_for_update=True)
    assert tenant is not None
    tenant.webhook_secret_previous = tenant.webhook_secret if grace_s > 0 else None
    tenant.webhook_secret_previous_until = now + timedelta(seconds=grace_s) if grace_s > 0 else None
    tenant.webhook_secret = signing.new_secret()
    return tenant


def claim_due(
    session: Session,
    *,
    now: datetime,
    lease: datetime,
    room: int,
    in_flight_receivers: dict[str, int],
    in_flight_tenants: dict[str, int],
    per_receiver: int,
    per_tenant: int,
) -> list[Claimed]:
    """Claim up to ``room`` due deliveries without taking any receiver or tenant over its share.

    Receivers and tenants already at their share are left out in SQL, so a backlog for one slow
    receiver never fills the candidates; the rest of the shares are counted here. Claimed rows get
    ``next_attempt_at = lease``: other dispatchers skip them until it passes.
    """
    chosen = _choose(
        session,
        WebhookDeliveryRow,
        now=now,
        lease=lease,
        room=room,
        in_flight_receivers=in_flight_receivers,
        in_flight_tenants=in_flight_tenants,
        per_receiver=per_receiver,
        per_tenant=per_tenant,
    )
    if not chosen:
        return []
    events = {e.id: e for e in session.scalars(select(EventRow).where(EventRow.id.in_([r.event_id for r in chosen])))}
    urls: dict[str, dict[str, Any]] = dict(
        session.execute(select(JobRow.id, JobRow.request).where(JobRow.id.in_({r.job_id for r in chosen}))).all()
    )
    tenant_rows = {
        t.id: t for t in session.scalars(select(TenantRow).where(TenantRow.id.in_({r.tenant_id for r in chosen})))
    }
    claimed = []
    for row in chosen:
        event, request, tenant = events.get(row.event_id), urls.get(row.job_id), tenant_rows.get(row.tenant_id)
        if event is None or request is None or tenant is None:
            # Only a hand-edited database gets here; failing the row keeps it from blocking every round.
            row.state, row.last_error = "failed", "its event, job or tenant is gone"
            continue
        claimed.append(
            Claimed(
                id=row.id,
                tenant_id=row.tenant_id,
                receiver=row.receiver,
                url=str(request.get("webhook_url") or ""),
                body=to_event(event).model_dump_json().encode(),
                secrets=signing_secrets(tenant, now),
                lease=lease,
            )
        )
    return claimed


def _choose(
    session: Session,
    model: type[WebhookDeliveryRow] | type[AssetWebhookRow],
    *,
    now: datetime,
    lease: datetime,
    room: int,
    in_flight_receivers: dict[str, int],
    in_flight_tenants: dict[str, int],
    per_receiver: int,
    per_tenant: int,
) -> list[Any]:
    """Due rows of an outbox table within the fair shares, claimed until ``lease`` (see :func:`claim_due`)."""
    if room <= 0:
        return []
    busy_receivers = [r for r, n in in_flight_receivers.items() if n >= per_receiver]
    busy_tenants = [t for t, n in in_flight_tenants.items() if n >= per_tenant]
    stmt: Any = select(model).where(model.state == "pending", model.next_attempt_at <= now)
    if busy_receivers:
        stmt = stmt.where(model.receiver.not_in(busy_receivers))
    if busy_tenants:
        stmt = stmt.where(model.tenant_id.not_in(busy_tenants))
    stmt = stmt.order_by(model.next_attempt_at, model.id).limit(room * 4).with_for_update(skip_locked=True)
    receivers, tenants = dict(in_flight_receivers), dict(in_flight_tenants)
    chosen: list[Any] = []
    row: Any
    for row in session.scalars(stmt):
        if len(chosen) == room:
            break
        if receivers.get(row.receiver, 0) >= per_receiver or tenants.get(row.tenant_id, 0) >= per_tenant:
            continue
        receivers[row.receiver] = receivers.get(row.receiver, 0) + 1
        tenants[row.tenant_id] = tenants.get(row.tenant_id, 0) + 1
        row.next_attempt_at = lease
        chosen.append(row)
    return chosen


def claim_due_assets(
    session: Session,
    *,
    now: datetime,
    lease: datetime,
    room: int,
    in_flight_receivers: dict[str, int],
    in_flight_tenants: dict[str, int],
    per_receiver: int,
    per_tenant: int,
) -> list[Claimed]:
    """:func:`claim_due` for asset events (the tenant endpoint's outbox)."""
    chosen: list[AssetWebhookRow] = _choose(
        session,
        AssetWebhookRow,
        now=now,
        lease=lease,
        room=room,
        in_flight_receivers=in_flight_receivers,
        in_flight_tenants=in_flight_tenants,
        per_receiver=per_receiver,
        per_tenant=per_tenant,
    )
    if not chosen:
        return []
    tenants = {
        t.id: t for t in session.scalars(select(TenantRow).where(TenantRow.id.in_({r.tenant_id for r in chosen})))
    }
    return [
        Claimed(
            id=row.id,
            tenant_id=row.tenant_id,
            receiver=row.receiver,
            url=row.url,
            body=row.body.encode(),
            secrets=signing_secrets(tenants[row.tenant_id], now),
            lease=lease,
            kind="asset",
        )
        for row in chosen
    ]


def record_attempt(
    session: Session,
    claimed: Claimed,
    *,
    status: int | None,
    error: str | None,
    retry_in_s: Callable[[int], float | None],
    now: datetime,
) -> None:
    """Record one attempt's outcome, if this dispatcher still holds the claim.

    ``error`` None: delivered. Otherwise pending again in ``retry_in_s(attempts so far)`` seconds, or
    failed for good when that is None.
    """
    model: type[AssetWebhookRow] | type[WebhookDeliveryRow] = (
        AssetWebhookRow if claimed.kind == "asset" else WebhookDeliveryRow
    )
    row: Any = session.get(model, claimed.id, with_for_update=True, populate_existing=True)
    # Only the holder of the claim records the outcome (another dispatcher may have taken over).
    if row is None or row.state != "pending" or row.next_attempt_at != claimed.lease:
        return
    row.attempts += 1
    row.last_status = status
    row.last_error = error
    if error is None:
        row.state = "delivered"
        row.delivered_at = now
    else:
        delay = retry_in_s(row.attempts)
        if delay is None:
            row.state = "failed"
        else:
            row.next_attempt_at = now + timedelta(seconds=delay)


def list_deliveries(
    session: Session, tenant_id: str, *, cursor: str | None, limit: int, receivers: Collection[str] = ()
) -> tuple[list[tuple[WebhookDeliveryRow, str]], str | None]:
    """A page of a tenant's deliveries, newest first, each with its job's webhook URL."""
    stmt = select(WebhookDeliveryRow).where(WebhookDeliveryRow.tenant_id == tenant_id)
    if receivers:
        stmt = stmt.where(WebhookDeliveryRow.receiver.in_(list(receivers)))
    rows, nxt = page_of(list(session.scalars(paginate(stmt, WebhookDeliveryRow.id, cursor, limit))), limit)
    requests: dict[str, dict[str, Any]] = dict(
        session.execute(select(JobRow.id, JobRow.request).where(JobRow.id.in_({r.job_id for r in rows}))).all()
    )
    return [(r, str(requests[r.job_id].get("webhook_url") or "")) for r in rows], nxt


# -- the tenant's endpoint for asset events ------------------------------------------------------------------


def get_endpoint(session: Session, tenant_id: str) -> WebhookEndpointRow | None:
    """The tenant's asset-event endpoint, if set."""
    return session.get(WebhookEndpointRow, tenant_id)


def set_endpoint(
    session: Session, tenant_id: str, url: str, updated_by: str | None, now: datetime
) -> WebhookEndpointRow:
    """Set (or replace) the tenant's endpoint; the caller has checked the URL against the outbound policy."""
    row = session.get(WebhookEndpointRow, tenant_id, with_for_update=True)
    if row is None:
        row = WebhookEndpointRow(tenant_id=tenant_id, url=url, updated_by=updated_by, updated_at=now)
        session.add(row)
    else:
        row.url, row.updated_by, row.updated_at = url, updated_by, now
    session.flush()
    return row


def delete_endpoint(session: Session, tenant_id: str) -> bool:
    """Remove the tenant's endpoint (events already queued are still sent); whether there was one."""
    row = session.get(WebhookEndpointRow, tenant_id)
    if row is None:
        return False
    session.delete(row)
    return True


def enqueue_asset_event(
    session: Session, row: AssetRow, type_: str, now: datetime, extra: dict[str, Any] | None = None
) -> AssetWebhookRow | None:
    """Queue ``type_`` about ``row`` for its tenant's endpoint, in the caller's transaction; None without one.

    The body is fixed now (Standard Webhooks' ``{type, timestamp, data}``), so each retry sends the same bytes.
    """
    assert type_ in ASSET_EVENTS, type_
    endpoint = session.get(WebhookEndpointRow, row.tenant_id)
    if endpoint is None:
        return None
    delivery_id = new_id()
    data = {"asset": assetstore.to_asset(row).model_dump(mode="json"), **(extra or {})}
    body = {"id": delivery_id, "type": type_, "timestamp": now.isoformat(), "tenant_id": row.tenant_id, "data": data}
    delivery = AssetWebhookRow(
        id=delivery_id,
        tenant_id=row.tenant_id,
        asset_id=row.id,
        type=type_,
        url=endpoint.url,
        receiver=receiver_of(endpoint.url),
        body=json.dumps(body, separators=(",", ":"), sort_keys=True),
        state="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(delivery)
    return delivery


def announce_rights_expiring(session: Session, now: datetime, within: timedelta) -> int:
    """Queue ``asset.rights_expiring`` for each asset whose rights expire within ``within`` and that has not been
    announced for this expiry (a tenant without an endpoint counts as told); returns how many were announced."""
    rows = assetstore.rights_expiring(session, now, within)
    for row in rows:
        row.rights_notified_at = now
        assert row.rights_expires_at is not None
        enqueue_asset_event(
            session, row, "asset.rights_expiring", now, {"rights_expires_at": row.rights_expires_at.isoformat()}
        )
    return len(rows)


def list_asset_deliveries(
    session: Session, tenant_id: str, *, cursor: str | None, limit: int
) -> tuple[list[AssetWebhookRow], str | None]:
    """A page of the tenant's asset-event deliveries, newest first."""
    stmt = select(AssetWebhookRow).where(AssetWebhookRow.tenant_id == tenant_id)
    return page_of(list(session.scalars(paginate(stmt, AssetWebhookRow.id, cursor, limit))), limit)
