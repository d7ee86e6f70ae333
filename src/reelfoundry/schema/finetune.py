"""Fine-tunes: a LoRA adapter of a base model trained on a DAM collection, registered as a portfolio model."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from reelfoundry.schema.job import JobError


class FinetuneState(StrEnum):
    """The state of its job: queued, running, then succeeded, failed or cancelled."""

    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


class FinetuneCreate(BaseModel):
    """``POST /v1/finetunes``: train ``name`` from ``base`` on a collection's approved, training-allowed assets."""

    model_config = ConfigDict(extra="forbid", title="FinetuneCreate")

    name: str = Field(
        ...,
        min_length=1,
        max_length=128,
        pattern=r"^[a-z0-9][a-z0-9._-]*$",
        description="The model id it registers (requests name it as their model); must be free.",
    )
    base: str = Field("builtin", min_length=1, max_length=128, description="The model whose adapter is trained.")
    collection: str = Field(..., min_length=1, max_length=128, description="Collection id or name to train on.")
    rank: int = Field(8, ge=1, le=128, description="LoRA rank.")
    steps: int = Field(300, ge=1, le=20000, description="Optimiser steps.")
    lr: float = Field(1e-3, gt=0, le=1, description="Learning rate.")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="Seed (same seed, clips and settings: same adapter).")


class Finetune(BaseModel):
    """A fine-tune and what it made."""

    model_config = ConfigDict(title="Finetune")

    id: str
    tenant_id: str
    name: str
    base: str
    collection_id: str | None = None
    state: FinetuneState
    params: dict[str, Any] = Field(default_factory=dict, description="rank, steps, lr, seed.")
    job_id: str | None = Field(None, description="The job that runs it (progress, events, cancel, cost).")
    progress: float = Field(0.0, ge=0, le=1)
    assets_used: list[str] = Field(default_factory=list, description="The assets it trains on (chosen at submission).")
    adapter_sha256: str | None = Field(None, description="SHA-256 of the adapter file, pinned on the model card.")
    evaluation: dict[str, Any] | None = None
    error: JobError | None = None
    created_at: datetime
    finished_at: datetime | None = None
