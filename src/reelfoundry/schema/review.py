"""The review gate: an asset's review state, a reviewer's decision, a publication and tenant settings."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from reelfoundry.schema.keys import Role
from reelfoundry.schema.text import PROSE


class ReviewState(StrEnum):
    """Where an asset is on its way to market.

    ::

        pending_review ──approve──▶ approved ──publish──▶ published
              │
              └──reject──▶ rejected

    Only a person with the reviewer or admin role moves an asset out of ``pending_review``;
    only ``published`` assets are served through delivery URLs.
    """

    pending_review = "pending_review"
    approved = "approved"
    rejected = "rejected"
    published = "published"


class ReviewDecision(StrEnum):
    """What a reviewer decides."""

    approve = "approve"
    reject = "reject"


#: Every allowed (from, to) pair of review states; the store refuses anything else.
REVIEW_TRANSITIONS: frozenset[tuple[ReviewState, ReviewState]] = frozenset(
    {
        (ReviewState.pending_review, ReviewState.approved),
        (ReviewState.pending_review, ReviewState.rejected),
        (ReviewState.approved, ReviewState.published),
    }
)

#: The state each decision moves a pending asset to.
DECISION_STATE = {ReviewDecision.approve: ReviewState.approved, ReviewDecision.reject: ReviewState.rejected}


class ReviewCreate(BaseModel):
    """Body of ``POST /v1/assets/{id}/review``."""

    model_config = ConfigDict(extra="forbid")

    decision: ReviewDecision = Field(..., description="approve or reject.")
    comment: str = Field(
        "",
        max_length=4000,
        pattern=PROSE,
        description="Why; kept with the asset and shown to the team. The published file's manifest records "
        "its SHA-256, not the text.",
    )


class Review(BaseModel):
    """A reviewer's decision on an asset."""

    model_config = ConfigDict(title="Review")

    decision: ReviewDecision
    comment: str
    reviewer_key_id: str = Field(..., description="The API key that decided.")
    reviewer_role: Role
    reviewed_at: datetime


class Publication(BaseModel):
    """Answer of ``POST /v1/assets/{id}/publish``: where the published file can be fetched, until when."""

    model_config = ConfigDict(title="Publication")

    asset_id: str
    url: str = Field(..., description="Signed delivery URL; needs no API key; stops working at expires_at.")
    expires_at: datetime
    published_at: datetime
    sha256: str = Field(..., description="SHA-256 of the published file (it carries the review manifest).")
    bytes: int = Field(..., ge=0)


class TenantSettings(BaseModel):
    """A tenant's own settings (``GET``/``PATCH /v1/tenant``)."""

    model_config = ConfigDict(title="TenantSettings")

    id: str
    name: str
    allow_self_approval: bool = Field(
        ..., description="Whether the key that submitted a job may approve its asset (default false)."
    )


class TenantUpdate(BaseModel):
    """Body of ``PATCH /v1/tenant``: the settings to change."""

    model_config = ConfigDict(extra="forbid")

    allow_self_approval: bool | None = None
