"""API key resources."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from reelfoundry.schema.text import PRINTABLE


class Role(StrEnum):
    """What a key may do inside its tenant."""

    admin = "admin"
    creator = "creator"
    reviewer = "reviewer"
    viewer = "viewer"
    worker = "worker"


class KeyCreate(BaseModel):
    """Body of ``POST /v1/keys``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        ..., min_length=1, max_length=128, pattern=PRINTABLE, description="Label for people, e.g. 'ci-bot'."
    )
    role: Role = Field(..., description="admin, creator, reviewer, viewer or worker.")
    tenant: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        pattern=r"^[a-z0-9][a-z0-9-]*$",
        description=(
            "Tenant name. Default: the caller's tenant. Only the operator tenant may name another (created if new)."
        ),
    )


class KeyPublic(BaseModel):
    """A key as listed: never its secret."""

    id: str
    name: str
    role: Role
    tenant: str
    created_at: datetime
    revoked_at: datetime | None = None


class KeyCreated(KeyPublic):
    """Returned once, at creation: the only time the secret is shown."""

    secret: str = Field(..., description="The bearer token. Store it now; it cannot be shown again.")
