"""/v1/webhooks: the delivery log and the tenant's signing secret."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import select

from reelfoundry.api.deps import Cursor, KeyAdmin, Limit, PlatformDep, Reader
from reelfoundry.schema import Page
from reelfoundry.store.pagination import page_of, paginate
from reelfoundry.store.tables import TenantRow, WebhookDeliveryRow

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


class Delivery(BaseModel):
    """One webhook delivery and how it went."""

    id: str
    event_id: int
    job_id: str
    url: str
    state: str
    attempts: int
    last_status: int | None
    last_error: str | None
    next_attempt_at: datetime
    created_at: datetime
    delivered_at: datetime | None


class Secret(BaseModel):
    """The HMAC key receivers use to verify ReelFoundry-Signature."""

    secret: str


@router.get("/deliveries", response_model=Page[Delivery], summary="The delivery log, newest first")
def deliveries(platform: PlatformDep, principal: Reader, cursor: Cursor = None, limit: Limit = 50) -> Page[Delivery]:
    """Every delivery of the tenant's webhooks with its attempts and last outcome."""
    with platform.db.read() as session:
        stmt = select(WebhookDeliveryRow).where(WebhookDeliveryRow.tenant_id == principal.tenant_id)
        rows, nxt = page_of(list(session.scalars(paginate(stmt, WebhookDeliveryRow.id, cursor, limit))), limit)
        items = [Delivery.model_validate(r, from_attributes=True) for r in rows]
    return Page[Delivery](items=items, next_cursor=nxt)


@router.get("/secret", response_model=Secret, summary="The tenant's webhook signing secret (admin)")
def secret(platform: PlatformDep, principal: KeyAdmin) -> Secret:
    """Signature = hex HMAC-SHA256(secret, "<ReelFoundry-Timestamp>.<raw body>"), sent as ``v1=<hex>``."""
    with platform.db.read() as session:
        tenant = session.get(TenantRow, principal.tenant_id)
        assert tenant is not None
        return Secret(secret=tenant.webhook_secret)
