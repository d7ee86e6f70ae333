"""/v1/webhooks: the delivery log, the tenant's signing secret and its rotation."""

from __future__ import annotations

from fastapi import APIRouter

from reelfoundry.api.deps import Cursor, KeyAdmin, Limit, PlatformDep, Reader
from reelfoundry.schema import Page
from reelfoundry.schema.webhooks import WebhookDelivery, WebhookRotation, WebhookSecret
from reelfoundry.store import audit
from reelfoundry.store import webhooks as outbox
from reelfoundry.store.tables import TenantRow, utcnow

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


def _secret(tenant: TenantRow) -> WebhookSecret:
    signing = outbox.signing_secrets(tenant, utcnow())
    return WebhookSecret(
        secret=tenant.webhook_secret,
        previous_secret=signing[1] if len(signing) > 1 else None,
        previous_valid_until=tenant.webhook_secret_previous_until if len(signing) > 1 else None,
    )


@router.get("/deliveries", response_model=Page[WebhookDelivery], summary="The delivery log, newest first")
def list_webhook_deliveries(
    platform: PlatformDep, principal: Reader, cursor: Cursor = None, limit: Limit = 50
) -> Page[WebhookDelivery]:
    """Every delivery of the tenant's webhooks with its attempts and last outcome."""
    with platform.db.read() as session:
        rows, nxt = outbox.list_deliveries(session, principal.tenant_id, cursor=cursor, limit=limit)
        fields = WebhookDelivery.model_fields.keys() - {"url"}
        items = [WebhookDelivery(url=url, **{f: getattr(r, f) for f in fields}) for r, url in rows]
    return Page[WebhookDelivery](items=items, next_cursor=nxt)


@router.get("/secret", response_model=WebhookSecret, summary="The tenant's webhook signing secret (admin)")
def get_webhook_secret(platform: PlatformDep, principal: KeyAdmin) -> WebhookSecret:
    """Verify deliveries with the ``standardwebhooks`` package: ``Webhook(secret).verify(body, headers)``."""
    with platform.db.read() as session:
        tenant = session.get(TenantRow, principal.tenant_id)
        assert tenant is not None
        return _secret(tenant)


@router.post("/secret/rotate", response_model=WebhookSecret, summary="Rotate the webhook signing secret (admin)")
def rotate_webhook_secret(
    platform: PlatformDep, principal: KeyAdmin, body: WebhookRotation | None = None
) -> WebhookSecret:
    """A new secret signs from now on; the old one signs beside it for the grace period, then stops."""
    grace = platform.settings.webhook_secret_grace_s if body is None or body.grace_s is None else body.grace_s
    with platform.db.write() as session:
        tenant = outbox.rotate_secret(session, principal.tenant_id, grace, utcnow())
        audit.append_by(session, principal, "webhook.secret_rotated", subject=tenant.id, data={"grace_s": grace})
        return _secret(tenant)
