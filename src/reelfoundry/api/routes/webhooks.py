"""/v1/webhooks: the delivery log, the tenant's signing secret and its rotation."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from reelfoundry.api.deps import Cursor, KeyAdmin, Limit, PlatformDep, Reader
from reelfoundry.schema import Page
from reelfoundry.store import audit
from reelfoundry.store import webhooks as outbox
from reelfoundry.store.tables import TenantRow, utcnow

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


class Delivery(BaseModel):
    """One webhook delivery and how it went."""

    id: str = Field(description="Also the webhook-id header: the same on every retry.")
    event_id: int
    job_id: str
    url: str = Field(description="The job's webhook_url.")
    receiver: str = Field(description="host:port the delivery goes to.")
    state: str
    attempts: int
    last_status: int | None
    last_error: str | None
    next_attempt_at: datetime
    created_at: datetime
    delivered_at: datetime | None


class Secret(BaseModel):
    """The tenant's Standard Webhooks signing secret(s)."""

    secret: str = Field(description="whsec_<base64>: pass it to standardwebhooks.Webhook(secret).verify(...).")
    previous_secret: str | None = Field(
        None, description="The secret before the last rotation, while it still signs (both signatures are sent)."
    )
    previous_valid_until: datetime | None = Field(None, description="When the previous secret stops signing.")


class Rotation(BaseModel):
    """How long the current secret keeps signing beside the new one."""

    model_config = ConfigDict(extra="forbid")

    grace_s: float | None = Field(
        None,
        ge=0,
        le=30 * 86400,
        description="Seconds the old secret keeps signing (0 = stop at once). Default: the server's "
        "webhook_secret_grace_s (24 h).",
    )


def _secret(tenant: TenantRow) -> Secret:
    signing = outbox.signing_secrets(tenant, utcnow())
    return Secret(
        secret=tenant.webhook_secret,
        previous_secret=signing[1] if len(signing) > 1 else None,
        previous_valid_until=tenant.webhook_secret_previous_until if len(signing) > 1 else None,
    )


@router.get("/deliveries", response_model=Page[Delivery], summary="The delivery log, newest first")
def list_webhook_deliveries(
    platform: PlatformDep, principal: Reader, cursor: Cursor = None, limit: Limit = 50
) -> Page[Delivery]:
    """Every delivery of the tenant's webhooks with its attempts and last outcome."""
    with platform.db.read() as session:
        rows, nxt = outbox.list_deliveries(session, principal.tenant_id, cursor=cursor, limit=limit)
        fields = Delivery.model_fields.keys() - {"url"}
        items = [Delivery(url=url, **{f: getattr(r, f) for f in fields}) for r, url in rows]
    return Page[Delivery](items=items, next_cursor=nxt)


@router.get("/secret", response_model=Secret, summary="The tenant's webhook signing secret (admin)")
def get_webhook_secret(platform: PlatformDep, principal: KeyAdmin) -> Secret:
    """Verify deliveries with the ``standardwebhooks`` package: ``Webhook(secret).verify(body, headers)``."""
    with platform.db.read() as session:
        tenant = session.get(TenantRow, principal.tenant_id)
        assert tenant is not None
        return _secret(tenant)


@router.post("/secret/rotate", response_model=Secret, summary="Rotate the webhook signing secret (admin)")
def rotate_webhook_secret(platform: PlatformDep, principal: KeyAdmin, body: Rotation | None = None) -> Secret:
    """A new secret signs from now on; the old one signs beside it for the grace period, then stops."""
    grace = platform.settings.webhook_secret_grace_s if body is None or body.grace_s is None else body.grace_s
    with platform.db.write() as session:
        tenant = outbox.rotate_secret(session, principal.tenant_id, grace, utcnow())
        audit.append_by(session, principal, "webhook.secret_rotated", subject=tenant.id, data={"grace_s": grace})
        return _secret(tenant)
