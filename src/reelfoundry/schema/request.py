"""VideoRequest v1: the one canonical shape of a generation request."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, UrlConstraints, field_validator, model_validator

from reelfoundry.schema.template import TemplateSpec
from reelfoundry.schema.text import PRINTABLE

MAX_PROMPT_CHARS = 4000
MAX_FRAMES = 2880
MAX_SIDE = 3840
MAX_URL_CHARS = 2048


class Priority(StrEnum):
    """Scheduling class: a person waiting, or work that can wait."""

    interactive = "interactive"
    batch = "batch"


class DataClass(StrEnum):
    """How sensitive the request's content is; pins where it may run."""

    public = "public"
    internal = "internal"
    confidential = "confidential"
    restricted = "restricted"


class Objective(StrEnum):
    """What the router optimises among the models that pass every hard filter."""

    auto = "auto"
    quality = "quality"
    cost = "cost"
    latency = "latency"


class Constraints(BaseModel):
    """Limits the platform must respect when it routes and runs the job."""

    model_config = ConfigDict(extra="forbid")

    max_cost_usd: Decimal | None = Field(
        None, ge=0, max_digits=12, decimal_places=6, description="Refuse to spend more than this. Default: no limit."
    )
    deadline_s: float | None = Field(
        None,
        gt=0,
        le=7 * 24 * 3600,
        description="Seconds from submission by which the job should finish. Default: none.",
    )
    data_class: DataClass = Field(DataClass.internal, description="Data classification. Default internal.")
    objective: Objective = Field(
        Objective.auto,
        description="How the router picks among the models that pass every hard filter (model auto only): auto "
        "(the cheapest that meets min_quality and the deadline), quality (the best), cost (the cheapest), "
        "latency (the soonest finished). Default auto.",
    )
    min_quality: float | None = Field(
        None, ge=0, le=1, description="Lowest model quality score (0–1) auto may pick. Default: none."
    )


class Labels(BaseModel):
    """Attribution labels for reports and filters."""

    model_config = ConfigDict(extra="forbid")

    project: str | None = Field(None, max_length=128, pattern=PRINTABLE, description="Project name. Default none.")
    campaign: str | None = Field(None, max_length=128, pattern=PRINTABLE, description="Campaign name. Default none.")


class VideoRequest(BaseModel):
    """A request for one video clip. Only ``prompt`` is required."""

    model_config = ConfigDict(extra="forbid", title="VideoRequest")

    schema_version: int = Field(1, ge=1, le=1, description="Schema version of this request. Default 1.")
    prompt: str = Field(
        ..., min_length=1, max_length=MAX_PROMPT_CHARS, description="What the video shows (1–4000 characters)."
    )
    negative_prompt: str | None = Field(
        None, max_length=MAX_PROMPT_CHARS, description="What the video must not show. Default none."
    )
    num_frames: int | None = Field(
        None, ge=1, le=MAX_FRAMES, description="Number of frames. Default: the model's default (or from duration_s)."
    )
    duration_s: float | None = Field(
        None, gt=0, le=120, description="Length in seconds; an alternative to num_frames. Default: the model's default."
    )
    fps: int | None = Field(None, ge=1, le=60, description="Frames per second. Default: the model's default.")
    width: int | None = Field(
        None, ge=16, le=MAX_SIDE, description="Width in pixels (even). Default: the model's default."
    )
    height: int | None = Field(
        None, ge=16, le=MAX_SIDE, description="Height in pixels (even). Default: the model's default."
    )
    steps: int | None = Field(
        None, ge=1, le=500, description="Denoising steps for diffusion models. Default: the model's default."
    )
    guidance_scale: float | None = Field(
        None, ge=0, le=50, description="Classifier-free guidance scale. Default: the model's default."
    )
    seed: int | None = Field(
        None, ge=0, le=2**32 - 1, description="Random seed. Default: chosen at submission and recorded on the job."
    )
    model: str = Field(
        "auto",
        min_length=1,
        max_length=128,
        description='Model id, or "auto" to let the platform choose. Default auto.',
    )
    template: TemplateSpec | None = Field(
        None, description="Spec for the template backend. Default: a title card of the prompt."
    )
    inputs: list[str] = Field(
        default_factory=list,
        max_length=16,
        description="Asset ids used as inputs (images, reference clips). Default none.",
    )
    priority: Priority = Field(Priority.interactive, description="interactive or batch. Default interactive.")
    constraints: Constraints = Field(default_factory=Constraints, description="Cost, deadline and data-class limits.")
    labels: Labels = Field(default_factory=Labels, description="Project and campaign for attribution.")
    webhook_url: Annotated[AnyHttpUrl, UrlConstraints(max_length=MAX_URL_CHARS)] | None = Field(
        None,
        description="http(s) URL (at most 2048 characters, no user:password@) that receives the job's events, "
        "signed as Standard Webhooks, at least once. Only public addresses unless the server allows the host. "
        "Default none.",
    )
    consent_reference: str | None = Field(
        None,
        min_length=1,
        max_length=256,
        pattern=PRINTABLE,
        description="Reference to the recorded consent of a person the prompt names (required for protected "
        "identities). Default none.",
    )

    @field_validator("webhook_url")
    @classmethod
    def _no_credentials(cls, url: AnyHttpUrl | None) -> AnyHttpUrl | None:
        # Credentials in a URL end up in logs and in the delivery log that viewer keys read.
        if url is not None and (url.username or url.password):
            raise ValueError("webhook_url must not carry credentials (user:password@host)")
        return url

    @model_validator(mode="after")
    def _check(self) -> VideoRequest:
        if self.num_frames is not None and self.duration_s is not None:
            raise ValueError("give num_frames or duration_s, not both")
        for side in ("width", "height"):
            value = getattr(self, side)
            if value is not None and value % 2:
                raise ValueError(f"{side} must be even for H.264 4:2:0 video, got {value}")
        return self
