"""ModelCard: what a model in the portfolio is, does and needs."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ModelCard(BaseModel):
    """A model in the portfolio and the limits within which it may be asked to generate."""

    model_config = ConfigDict(extra="forbid", title="ModelCard", protected_namespaces=())

    id: str = Field(
        ..., min_length=1, max_length=128, pattern=r"^[a-z0-9][a-z0-9._-]*$", description="Model id used in requests."
    )
    name: str = Field(..., description="Human-readable name.")
    version: str = Field("1", description="Model version. Default 1.")
    backend: str = Field(..., description="Registered backend name or import path `module:Class`.")
    hosting: Literal["self-hosted", "remote"] = Field(
        "self-hosted",
        description="Where the model runs: on this platform's own machines, or a vendor's remote API (which "
        "confidential and restricted requests may not use). Default self-hosted.",
    )
    description: str = Field("", description="What the model is good for. Default empty.")
    task: str = Field("text-to-video", description="text-to-video or image-to-video. Default text-to-video.")
    self_hosted: bool = Field(True, description="Runs on our own devices (true) or a vendor API (false). Default true.")
    default_num_frames: int = Field(..., ge=1, description="Frames when the request gives none.")
    default_fps: int = Field(..., ge=1, description="Frames per second when the request gives none.")
    default_width: int = Field(..., ge=16, description="Width when the request gives none.")
    default_height: int = Field(..., ge=16, description="Height when the request gives none.")
    max_num_frames: int = Field(..., ge=1, description="Most frames one job may ask for.")
    max_width: int = Field(..., ge=16, description="Largest width.")
    max_height: int = Field(..., ge=16, description="Largest height.")
    default_steps: int | None = Field(None, ge=1, description="Denoising steps when the request gives none.")
    default_guidance_scale: float | None = Field(None, ge=0, description="Guidance scale when the request gives none.")
    frame_multiple: int = Field(
        1, ge=1, description="num_frames must be k*frame_multiple (+1 if frame_offset). Default 1."
    )
    frame_offset: int = Field(0, ge=0, description="See frame_multiple. Default 0.")
    license: str = Field("", description="Licence of the weights or code. Default empty.")
    options: dict[str, Any] = Field(default_factory=dict, description="Backend-specific settings. Default none.")
    training: dict[str, Any] = Field(
        default_factory=dict, description="How the weights were made: data, steps, wall time. Default none."
    )
    metrics: dict[str, Any] = Field(
        default_factory=dict,
        description="Measured quality and speed (evaluation results, with the date and machine). Default none.",
    )
