"""The DAM: editable asset metadata, collections, search parameters and the tenant's webhook endpoint."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, UrlConstraints, field_validator

from reelfoundry.schema.text import PRINTABLE, PROSE

#: Most tags one asset carries, and the longest tag.
MAX_TAGS = 50
MAX_TAG_CHARS = 64
#: A tag: lower-case letters, digits, and inner spaces, dots, colons, underscores or hyphens.
TAG = r"^[^\W_](?:[\w .:-]{0,62}[^\W_])?$"
#: A usage restriction: a lower-case slug such as ``no-training``.
RESTRICTION = r"^[a-z0-9][a-z0-9-]{0,63}$"
MAX_RESTRICTIONS = 16
#: The restriction that keeps an asset out of every training set.
NO_TRAINING = "no-training"


def normalise_tags(values: list[str] | None, field: str = "tags") -> list[str] | None:
    """Lower-case, trimmed, de-duplicated tags in their first order; ValueError naming a bad one."""
    if values is None:
        return None
    seen: list[str] = []
    for raw in values:
        tag = " ".join(raw.split()).lower()
        if not re.fullmatch(TAG, tag):
            raise ValueError(
                f"{field}: {raw[:80]!r} is not a tag (1–{MAX_TAG_CHARS} letters, digits, spaces, '.', ':', '_', '-')"
            )
        if tag not in seen:
            seen.append(tag)
    return seen


class Origin(StrEnum):
    """Where an asset came from."""

    generated = "generated"
    uploaded = "uploaded"


#: Metadata fields PATCH (AssetUpdate) may change, in the order audit entries list them.
METADATA_FIELDS = (
    "title",
    "description",
    "tags",
    "brand",
    "licence",
    "consent_ref",
    "rights_expires_at",
    "usage_restrictions",
)


class AssetUpdate(BaseModel):
    """Body of ``PATCH /v1/assets/{id}``: the metadata to change. A field sent as null is cleared; a field left out
    stays as it is."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(None, max_length=200, pattern=PRINTABLE)
    description: str | None = Field(None, max_length=4000, pattern=PROSE)
    tags: list[Annotated[str, Field(max_length=200)]] | None = Field(
        None, max_length=MAX_TAGS, description="Replaces the tags (lower-cased, de-duplicated)."
    )
    brand: str | None = Field(None, max_length=128, pattern=PRINTABLE)
    licence: str | None = Field(None, max_length=128, pattern=PRINTABLE, description="e.g. CC-BY-4.0, or 'internal'.")
    consent_ref: str | None = Field(
        None, max_length=255, pattern=PRINTABLE, description="Where the consent of the people shown is recorded."
    )
    rights_expires_at: datetime | None = Field(
        None, description="After this the asset is never published nor used for training (timezone required)."
    )
    usage_restrictions: list[Annotated[str, Field(pattern=RESTRICTION)]] | None = Field(
        None, max_length=MAX_RESTRICTIONS, description="e.g. ['no-training']."
    )
    accept_suggestions: (
        bool | Annotated[list[Annotated[str, Field(max_length=200)]], Field(max_length=MAX_TAGS)] | None
    ) = Field(
        None,
        description="true: add every suggested tag to tags; a list: add those suggestions. Accepted suggestions "
        "leave suggested_tags.",
    )

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str] | None) -> list[str] | None:
        return normalise_tags(value)

    @field_validator("usage_restrictions")
    @classmethod
    def _restrictions(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else list(dict.fromkeys(value))

    @field_validator("rights_expires_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("rights_expires_at needs a timezone (e.g. 2027-01-31T00:00:00Z)")
        return value


class SearchMode(StrEnum):
    """How ``q`` is matched: words (full text) or meaning (MiniLM embeddings)."""

    text = "text"
    semantic = "semantic"


class CollectionCreate(BaseModel):
    """Body of ``POST /v1/collections``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, max_length=128, pattern=PRINTABLE)
    description: str | None = Field(None, max_length=4000, pattern=PROSE)


class Collection(BaseModel):
    """A named set of a tenant's assets."""

    model_config = ConfigDict(title="Collection")

    id: str
    tenant_id: str
    name: str
    description: str | None = None
    asset_count: int = Field(..., ge=0)
    created_by: str | None = None
    created_at: datetime


class CollectionAssets(BaseModel):
    """Body of ``POST /v1/collections/{id}/assets``: assets to add (already there: no change)."""

    model_config = ConfigDict(extra="forbid")

    asset_ids: list[Annotated[str, Field(max_length=26)]] = Field(..., min_length=1, max_length=200)


class WebhookEndpointUpdate(BaseModel):
    """Body of ``PUT /v1/webhooks/endpoint``: where the tenant's asset events go."""

    model_config = ConfigDict(extra="forbid")

    url: Annotated[AnyHttpUrl, UrlConstraints(max_length=2048)]


class WebhookEndpoint(BaseModel):
    """The tenant's endpoint for asset events (asset.created, asset.metadata_updated, asset.rights_expiring)."""

    model_config = ConfigDict(title="WebhookEndpoint")

    url: str
    updated_at: datetime


class AssetWebhookDelivery(BaseModel):
    """One delivery of an asset event to the tenant's endpoint and how it went."""

    model_config = ConfigDict(title="AssetWebhookDelivery")

    id: str = Field(description="Also the webhook-id header: the same on every retry.")
    asset_id: str
    type: str = Field(description="asset.created, asset.metadata_updated or asset.rights_expiring.")
    url: str
    receiver: str
    state: str
    attempts: int
    last_status: int | None
    last_error: str | None
    next_attempt_at: datetime
    created_at: datetime
    delivered_at: datetime | None
