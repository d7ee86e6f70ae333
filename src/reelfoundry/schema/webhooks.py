"""Webhook resources: the delivery log, the signing secret and its rotation."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class WebhookDelivery(BaseModel):
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


class WebhookSecret(BaseModel):
    """The tenant's Standard Webhooks signing secret(s)."""

    secret: str = Field(description="whsec_<base64>: pass it to standardwebhooks.Webhook(secret).verify(...).")
    previous_secret: str | None = Field(
        None, description="The secret before the last rotation, while it still signs (both signatures are sent)."
    )
    previous_valid_until: datetime | None = Field(None, description="When the previous secret stops signing.")


class WebhookRotation(BaseModel):
    """How long the current secret keeps signing beside the new one."""

    model_config = ConfigDict(extra="forbid")

    grace_s: float | None = Field(
        None,
        ge=0,
        le=30 * 86400,
        description="Seconds the old secret keeps signing (0 = stop at once). Default: the server's "
        "webhook_secret_grace_s (24 h).",
    )
