"""Response models the API defines outside :mod:`reelfoundry.schema` (the webhook log and secret)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class WebhookDelivery(BaseModel):
    """One webhook delivery and how it went (an item of ``GET /v1/webhooks/deliveries``)."""

    id: str
    event_id: int
    job_id: str
    url: str
    receiver: str
    state: str
    attempts: int
    last_status: int | None
    last_error: str | None
    next_attempt_at: datetime
    created_at: datetime
    delivered_at: datetime | None


class WebhookSecret(BaseModel):
    """The tenant's Standard Webhooks signing secret, and the previous one while it still signs."""

    secret: str
    previous_secret: str | None = None
    previous_valid_until: datetime | None = None
