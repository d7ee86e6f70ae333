"""Job, Asset and Event: what the platform records about a request and its output."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from reelfoundry.schema.cost import CostRecord, DecimalString
from reelfoundry.schema.request import VideoRequest
from reelfoundry.schema.review import Review, ReviewState
from reelfoundry.schema.route import RoutePlan


class JobState(StrEnum):
    """Where a job is in its life.

    ::

        queued ──claim──▶ running ──▶ succeeded
          │  ▲              │  │
          │  └──requeue─────┘  ├──▶ failed      (error, crash, timeout; or attempts used up)
          │   (crash/restart,  │
          │    attempts left)  └──▶ cancelled   (cancel seen at a step boundary)
          └──cancel──────────────▶ cancelled

    ``succeeded``, ``failed`` and ``cancelled`` are final.
    """

    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def final(self) -> bool:
        """True for states a job never leaves."""
        return self in FINAL_STATES


FINAL_STATES = frozenset({JobState.succeeded, JobState.failed, JobState.cancelled})

#: Every allowed (from, to) pair; the store refuses anything else.
TRANSITIONS: frozenset[tuple[JobState, JobState]] = frozenset(
    {
        (JobState.queued, JobState.running),
        (JobState.queued, JobState.cancelled),
        (JobState.running, JobState.succeeded),
        (JobState.running, JobState.failed),
        (JobState.running, JobState.cancelled),
        (JobState.running, JobState.queued),
    }
)


class JobError(BaseModel):
    """Why a job failed."""

    type: str = Field(..., description="Stable problem type URI.")
    detail: str = Field(..., description="One-line explanation.")


class Job(BaseModel):
    """One request being (or having been) turned into a video."""

    model_config = ConfigDict(title="Job", protected_namespaces=())

    id: str = Field(..., description="ULID.")
    tenant_id: str
    kind: str = Field(
        "generate", description="generate (a video), or finetune (a LoRA adapter: see /v1/finetunes/{id})."
    )
    state: JobState
    request: VideoRequest = Field(..., description="The request as accepted, with the seed filled in.")
    model: str = Field(..., description="Model id it runs on (the route's choice, or the fallback now running it).")
    route: RoutePlan | None = Field(
        None, description="The router's decision, made once at admission: candidates, estimates, filters, reason."
    )
    priority: str
    attempts: int = Field(..., description="How many times a worker has started it.")
    max_attempts: int
    progress: float = Field(..., ge=0, le=1, description="Fraction of steps done in the current attempt.")
    cancel_requested: bool
    error: JobError | None = None
    asset_id: str | None = Field(None, description="The output asset once succeeded.")
    estimated_usd: DecimalString | None = Field(
        None, description="Cost reserved against budgets at admission (decimal string); replaced by cost when done."
    )
    cost: CostRecord | None = Field(None, description="What the job cost, once it has ended.")
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None


class Asset(BaseModel):
    """A stored media file with its technical metadata."""

    model_config = ConfigDict(title="Asset")

    id: str
    tenant_id: str
    job_id: str | None = None
    media_type: str = Field(..., description='MIME type, e.g. "video/mp4".')
    bytes: int = Field(..., ge=0, description="Size in bytes.")
    sha256: str = Field(..., description="Hex SHA-256 of the content.")
    duration_s: float | None = None
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    num_frames: int | None = None
    codec: str | None = None
    project: str | None = None
    campaign: str | None = None
    created_by: str | None = Field(None, description="The API key that submitted the job (or uploaded the file).")
    review_state: ReviewState = Field(
        ReviewState.pending_review, description="pending_review, approved, rejected or published."
    )
    review: Review | None = Field(None, description="The reviewer's decision, once made.")
    published_at: datetime | None = None
    created_at: datetime
    # -- DAM metadata (PATCH /v1/assets/{id}); optional, so older clients and documents stay valid --
    origin: str | None = Field(None, description="generated (a job's output) or uploaded.")
    title: str | None = None
    description: str | None = None
    tags: list[str] | None = Field(None, description="Lower-case tags a person set (or accepted).")
    suggested_tags: list[str] | None = Field(
        None, description="Tags the platform suggests (from the prompt); not applied until accepted."
    )
    brand: str | None = None
    licence: str | None = None
    consent_ref: str | None = Field(None, description="Where the consent of the people shown is recorded.")
    rights_expires_at: datetime | None = Field(
        None, description="After this the asset is never published nor used for training."
    )
    usage_restrictions: list[str] | None = Field(None, description="e.g. ['no-training'].")
    metadata_updated_at: datetime | None = None
    near_duplicates: list[str] | None = Field(
        None, description="On upload: the tenant's assets whose key frames look nearly the same (perceptual hash)."
    )
    score: float | None = Field(None, description="In search results: how well it matched q (higher is better).")


class Event(BaseModel):
    """A state change or progress report of a job, in commit order."""

    model_config = ConfigDict(title="Event")

    id: int = Field(..., description="Monotonic sequence number; use as SSE Last-Event-ID.")
    job_id: str
    tenant_id: str
    type: str = Field(
        ...,
        description=(
            "job.queued, job.running, job.progress, job.succeeded, job.failed, job.cancelled, "
            "job.requeued, job.rerouted (to the route's next model after a backend failure), job.cancel_requested, "
            "budget.exceeded; for the job's asset: asset.approved, asset.rejected, "
            "asset.published."
        ),
    )
    data: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime


class Problem(BaseModel):
    """An RFC 9457 problem detail."""

    model_config = ConfigDict(title="Problem", extra="allow")

    type: str = Field(..., description="URI naming the kind of problem; stable.")
    title: str
    status: int
    detail: str
    instance: str | None = None
