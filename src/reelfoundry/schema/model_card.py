"""ModelCard: what a model in the portfolio is, does, needs, costs and how good it is.

A card is configuration: the portfolio file (``REELFOUNDRY_MODELS_FILE``, YAML) holds a list of
them, ``POST /v1/models`` adds one. The router reads capabilities, hosting, data classes, speed,
quality and price; the scheduler reads resources and speed; the backend reads ``options``.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from reelfoundry.schema.request import MAX_FRAMES, MAX_SIDE, DataClass

#: What a model can be asked to do.
Task = Literal["text-to-video", "image-to-video", "template"]
#: Device classes of the price catalog a self-hosted model may run on (MIG slices count as their device).
DEVICE_CLASSES = ("cpu", "L40S", "A100-40GB", "A100-80GB", "H100", "H200", "B200")
#: The speed key of a vendor API model: its time is the vendor's, not a device's.
API_DEVICE = "api"
#: Data classes that may never leave the platform's own machines.
SELF_HOSTED_ONLY = frozenset({DataClass.confidential, DataClass.restricted})
#: Model ids a card may not take: a request's ``model`` gives these another meaning.
RESERVED_IDS = frozenset({"auto"})
#: A card's place in its lifecycle: a candidate is registered but not routable until onboarding approves it.
CardStatus = Literal["candidate", "approved"]
#: Most bytes a card takes as JSON. Every job routed to a card stores a copy (with its fallbacks'), every server
#: re-reads the cards added over the API each second, and the shipped cards take 1 to 4 KiB.
MAX_CARD_BYTES = 65_536


class VendorHosting(BaseModel):
    """A commercial API that runs the model on the vendor's machines."""

    model_config = ConfigDict(extra="forbid")

    vendor: Literal["replicate", "fal"] = Field(..., description="Whose API: replicate or fal.")
    region: str = Field(..., min_length=1, max_length=64, description="Where the vendor runs it, e.g. us.")


class Resources(BaseModel):
    """What a self-hosted model needs from a device."""

    # Infinity and NaN are valid Python JSON and YAML (.inf, .nan), and an estimate made of them is no estimate.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    weights_gib: float = Field(0.0, ge=0, description="Device memory held by weights, encoders and VAE (GiB).")
    activation_gib_per_mpf: float = Field(
        0.0, ge=0, description="Device memory per job per million pixel-frames (width × height × frames / 1e6), GiB."
    )
    devices: list[str] = Field(
        default_factory=lambda: list(DEVICE_CLASSES),
        description="Device classes it can run on (the price catalog's names: cpu, L40S, A100-40GB, A100-80GB, "
        "H100, H200, B200); MIG slices of a listed device qualify when the memory fits. Default: all.",
    )
    max_batch: int = Field(1, ge=1, le=64, description="Most compatible jobs it runs as one batch. Default 1.")
    batch_marginal: float = Field(
        0.35,
        ge=0,
        le=1,
        description="Extra time each further job of a batch adds, as a fraction of one job's time. Default 0.35.",
    )

    def memory_gib(self, batch: int, num_frames: int, width: int, height: int) -> float:
        """Device memory a batch of ``batch`` jobs of this size takes."""
        return self.weights_gib + batch * self.activation_gib_per_mpf * num_frames * width * height / 1e6


class Speed(BaseModel):
    """How long one job takes on one device class (or at the vendor's API), and where the figure came from."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    s_per_step_mpf: float = Field(
        ..., ge=0, description="Seconds per denoising step per million pixel-frames at batch 1 on a whole device."
    )
    overhead_s: float = Field(0.0, ge=0, description="Fixed seconds per run (set-up, decode, encode). Default 0.")
    source: str = Field("assumed", max_length=256, description="measured (with date and machine) or assumed.")

    def seconds(self, num_frames: int, width: int, height: int, steps: int) -> float:
        """Seconds one job of this size takes."""
        return self.overhead_s + max(1, steps) * num_frames * width * height / 1e6 * self.s_per_step_mpf


class Quality(BaseModel):
    """A quality score in [0, 1] and where it came from."""

    model_config = ConfigDict(extra="forbid")

    score: float = Field(..., ge=0, le=1, description="Higher is better; comparable across the portfolio.")
    source: str = Field(..., min_length=1, max_length=256, description="e.g. 'reelfoundry eval', 'assumed'.")
    measured_at: date | None = Field(None, description="When it was measured. Default unknown.")


class EvaluationSummary(BaseModel):
    """The newest NRES evaluation of a model (``reelfoundry eval model --record``): set by the platform."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    suite: str = Field(..., max_length=32, description="The NRES suite run: quick or standard.")
    suite_version: str = Field(..., max_length=32, description="The suite's version (results of others differ).")
    measured_at: date = Field(..., description="When it ran.")
    fidelity: float = Field(
        ..., ge=0, le=1, description="exp(-FD / scale) against the reference; the router's quality score."
    )
    frechet_distance: float | None = Field(None, ge=0, description="Fréchet distance to the reference clips.")
    nres: float = Field(..., ge=0, le=1, description="fidelity / (1 + (t / t0) × (c / c0)), as the README states.")
    seconds_per_clip: float | None = Field(None, ge=0, description="Warm seconds per suite clip.")
    cost_per_clip_usd: Decimal | None = Field(None, ge=0, description="Dollars per suite clip at the node's rates.")
    peak_memory_mb: float = Field(0.0, ge=0, description="Peak memory of the run (RSS high-water on a CPU).")
    feature_extractor: str = Field("", max_length=256, description="What the features for the distance came from.")
    reference: str = Field("", max_length=256, description="What the generated clips were compared with.")


class ModelCard(BaseModel):
    """A model in the portfolio and the limits within which it may be asked to generate."""

    model_config = ConfigDict(extra="forbid", title="ModelCard", protected_namespaces=(), allow_inf_nan=False)

    id: str = Field(
        ...,
        min_length=1,
        max_length=128,
        pattern=r"^[a-z0-9][a-z0-9._-]*$",
        description='Model id used in requests (not "auto", which asks the router to choose).',
    )
    name: str = Field(..., max_length=256, description="Human-readable name.")
    version: str = Field("1", max_length=64, description="Model version. Default 1.")
    backend: str = Field(
        ...,
        max_length=256,
        description="Registered backend name (template, diffusers, replicate, fal) or `module:Class`.",
    )
    hosting: Literal["self-hosted"] | VendorHosting = Field(
        "self-hosted",
        description="Where it runs: self-hosted (this platform's workers), or a vendor API and its region "
        "({vendor, region}), which confidential and restricted requests never reach. Default self-hosted.",
    )
    description: str = Field("", max_length=4000, description="What the model is good for. Default empty.")
    task: Task = Field("text-to-video", description="text-to-video, image-to-video or template. Default text-to-video.")
    data_classes: list[DataClass] = Field(
        default_factory=lambda: list(DataClass),
        description="Data classes it may process. Default: all for self-hosted models, public and internal for "
        "vendor APIs (which may never take confidential or restricted data).",
    )
    # The limits stay within what a request may ask for (VideoRequest's), so a card cannot make a job larger
    # than any request could: its defaults apply to every request that gives no size.
    default_num_frames: int = Field(..., ge=1, le=MAX_FRAMES, description="Frames when the request gives none.")
    default_fps: int = Field(..., ge=1, le=60, description="Frames per second when the request gives none.")
    default_width: int = Field(..., ge=16, le=MAX_SIDE, description="Width when the request gives none.")
    default_height: int = Field(..., ge=16, le=MAX_SIDE, description="Height when the request gives none.")
    max_num_frames: int = Field(..., ge=1, le=MAX_FRAMES, description="Most frames one job may ask for.")
    min_num_frames: int = Field(
        1, ge=1, le=MAX_FRAMES, description="Fewest frames one job may ask for (a vendor's shortest clip). Default 1."
    )
    max_width: int = Field(..., ge=16, le=MAX_SIDE, description="Largest width.")
    max_height: int = Field(..., ge=16, le=MAX_SIDE, description="Largest height.")
    max_fps: int = Field(60, ge=1, le=60, description="Highest frame rate. Default 60.")
    default_steps: int | None = Field(None, ge=1, le=500, description="Denoising steps when the request gives none.")
    default_guidance_scale: float | None = Field(
        None, ge=0, le=50, description="Guidance scale when the request gives none."
    )
    frame_multiple: int = Field(
        1, ge=1, le=MAX_FRAMES, description="num_frames must be k*frame_multiple (+1 if frame_offset). Default 1."
    )
    frame_offset: int = Field(0, ge=0, le=MAX_FRAMES, description="See frame_multiple. Default 0.")
    resources: Resources = Field(default_factory=Resources, description="Device memory, devices and batching.")
    speed: dict[str, Speed] = Field(
        default_factory=dict,
        description="Time per device class it has been measured (or assumed) on; 'api' for a vendor API. "
        "Default none (the router then assumes the slowest).",
    )
    quality: Quality | None = Field(None, description="Quality score and its source. Default unknown (0).")
    price_usd_per_video_second: Decimal | None = Field(
        None,
        ge=0,
        max_digits=12,
        decimal_places=6,
        description="What a vendor API charges per second of video (API models; required for them).",
    )
    license: str = Field("", max_length=256, description="Licence of the weights or code. Default empty.")
    options: dict[str, Any] = Field(default_factory=dict, description="Backend-specific settings. Default none.")
    training: dict[str, Any] = Field(
        default_factory=dict, description="How the weights were made: data, steps, wall time. Default none."
    )
    metrics: dict[str, Any] = Field(
        default_factory=dict,
        description="Measured quality and speed (evaluation results, with the date and machine). Default none.",
    )

    status: CardStatus | None = Field(
        None,
        description="Set by the platform (ignored in POST /v1/models, refused in a models file): candidate (added "
        "over the API, not routable until onboarding passes and it is approved) or approved (routable; models-file "
        "and built-in cards always are).",
    )
    evaluation: EvaluationSummary | None = Field(
        None,
        description="Set by the platform (ignored in POST /v1/models, refused in a models file): the newest NRES "
        "evaluation, with its suite version and date.",
    )

    @model_validator(mode="before")
    @classmethod
    def _vendor_data_classes(cls, data: Any) -> Any:
        # A vendor card that does not list its data classes gets the ones a vendor may take.
        if isinstance(data, dict) and isinstance(data.get("hosting"), dict) and "data_classes" not in data:
            data = {**data, "data_classes": [DataClass.public.value, DataClass.internal.value]}
        return data

    @model_validator(mode="after")
    def _check(self) -> ModelCard:
        if self.id in RESERVED_IDS:
            raise ValueError(f"id {self.id!r} is reserved: a request's model {self.id!r} asks the router to choose")
        if not self.min_num_frames <= self.default_num_frames:
            raise ValueError(f"default_num_frames {self.default_num_frames} < min_num_frames {self.min_num_frames}")
        if self.default_num_frames > self.max_num_frames:
            raise ValueError(f"default_num_frames {self.default_num_frames} > max_num_frames {self.max_num_frames}")
        if self.default_width > self.max_width or self.default_height > self.max_height:
            raise ValueError("the default size is larger than max_width × max_height")
        if self.default_fps > self.max_fps:
            raise ValueError(f"default_fps {self.default_fps} > max_fps {self.max_fps}")
        unknown = sorted(set(self.resources.devices) - set(DEVICE_CLASSES))
        if unknown:
            raise ValueError(f"resources.devices {unknown} are not device classes; known: {list(DEVICE_CLASSES)}")
        speeds = sorted(set(self.speed) - set(DEVICE_CLASSES) - {API_DEVICE})
        if speeds:
            raise ValueError(f"speed keys {speeds} are not device classes (or 'api'); known: {list(DEVICE_CLASSES)}")
        if self.vendor is not None:
            leaking = sorted(c.value for c in SELF_HOSTED_ONLY & set(self.data_classes))
            if leaking:
                raise ValueError(f"a vendor API may not take {leaking} data: remove them from data_classes")
            if self.price_usd_per_video_second is None:
                raise ValueError("a vendor API card states price_usd_per_video_second")
        _check_estimate_hint(self.options.get("estimate_s"))
        size = len(self.model_dump_json())
        if size > MAX_CARD_BYTES:
            raise ValueError(
                f"the card takes {size} bytes as JSON; at most {MAX_CARD_BYTES} (options, training, metrics)"
            )
        return self

    @property
    def vendor(self) -> str | None:
        """The vendor whose API runs this model, or None when self-hosted."""
        return None if isinstance(self.hosting, str) else self.hosting.vendor

    @property
    def self_hosted(self) -> bool:
        """Whether the model runs on this platform's own workers."""
        return self.vendor is None


def _check_estimate_hint(hint: Any) -> None:
    # options.estimate_s is read by the cost estimate of every request the router considers this card for:
    # a malformed one would fail them all, so it is refused here.
    if hint is None:
        return
    keys = ("fixed", "per_frame_step")
    if not isinstance(hint, dict) or set(hint) != set(keys):
        raise ValueError("options.estimate_s is {fixed: seconds, per_frame_step: seconds}")
    for key in keys:
        value = hint[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
            raise ValueError(f"options.estimate_s.{key} must be a number of seconds, 0 or more, got {value!r}")


class ModelLifecycle(BaseModel):
    """A card added over the API on its way to production (model agility): registered → approved → first job."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str = Field(..., description="The model id.")
    status: CardStatus = Field(..., description="candidate or approved.")
    registered_at: datetime = Field(..., description="When the card was added.")
    approved_at: datetime | None = Field(None, description="When onboarding's approval made it routable.")
    first_job_at: datetime | None = Field(None, description="When its first production job was submitted.")
    registered_to_approved_s: float | None = Field(None, description="Seconds from registration to approval.")
    approved_to_first_job_s: float | None = Field(None, description="Seconds from approval to the first job.")
    registered_to_first_job_s: float | None = Field(None, description="Model agility: registration to first job.")
