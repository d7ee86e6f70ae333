"""A planning scenario: the facts of one organisation's video workload, written by hand in YAML.

::

    name: Investment bank, personalised client videos
    volume_per_month: 20000        # videos
    seconds_per_video: 30
    growth_per_year: 0.5           # +50 % a year
    latency_target_s: 60           # request to finished video
    data_classes: [confidential, restricted]
    gpu_ops_experience: none       # none | some | strong
    fine_tuning: light             # none | light | heavy
    horizon_years: 3
    weights: {volume: 1, latency: 2, security: 3, cost: 1, fine_tuning: 1}   # default: all 1
    prices: {...}                  # optional: overrides of the price catalog and the models' assumptions
    roi: {...}                     # optional: inputs of the ROI model

Every planning tool (GIM, TCO, ROI, E-TCO, reports) reads one :class:`Scenario`. Errors name the file, the
line and the field (``weights.security``), and the CLI prints them on one line with exit code 2.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from reelfoundry import safeyaml
from reelfoundry.errors import InvalidParameter

#: A scenario file larger than this is refused before it is parsed.
MAX_SCENARIO_BYTES = 262_144


class DataClass(StrEnum):
    """How sensitive the data a workload touches is, least to most."""

    public = "public"
    internal = "internal"
    confidential = "confidential"
    restricted = "restricted"

    @property
    def rank(self) -> int:
        """0 for public … 3 for restricted."""
        return list(DataClass).index(self)


class GpuOps(StrEnum):
    """In-house experience running GPU clusters."""

    none = "none"
    some = "some"
    strong = "strong"


class FineTuning(StrEnum):
    """How much the organisation customises models on its own data."""

    none = "none"
    light = "light"
    heavy = "heavy"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Weights(_Strict):
    """How much each GIM driver matters to this organisation (relative; any non-negative numbers)."""

    volume: float = Field(1.0, ge=0, le=1000)
    latency: float = Field(1.0, ge=0, le=1000)
    security: float = Field(1.0, ge=0, le=1000)
    cost: float = Field(1.0, ge=0, le=1000)
    fine_tuning: float = Field(1.0, ge=0, le=1000)

    @model_validator(mode="after")
    def _some_weight(self) -> Weights:
        if not any(self.model_dump().values()):
            raise ValueError("at least one weight must be above 0")
        return self

    def normalised(self) -> dict[str, float]:
        """Each weight over their sum (they add up to 1)."""
        values = self.model_dump()
        total = sum(values.values())
        return {k: v / total for k, v in values.items()}


Money = Decimal


class PriceAssumptions(_Strict):
    """Overrides of what TCO would otherwise take from the price catalog or its documented defaults. Every
    field is optional; a figure given here is reported as the scenario's assumption."""

    device: str | None = Field(None, max_length=32, description="GPU class that runs the work (default H100).")
    gpu_seconds_per_video_second: float | None = Field(
        None, gt=0, le=100_000, description="GPU-seconds to render one second of video (default: TCO's model)."
    )
    utilisation: float | None = Field(
        None, gt=0, le=1, description="Average busy share of owned or reserved GPUs (sizes the fleet)."
    )
    gpu_capex_usd: Money | None = Field(
        None, ge=0, le=10_000_000, description="Purchase price per GPU, server share included."
    )
    amortisation_years: float | None = Field(None, gt=0, le=20, description="Years the purchase is written off over.")
    electricity_usd_per_kwh: Money | None = Field(None, ge=0, le=10)
    pue: Decimal | None = Field(None, ge=1, le=5, description="Power usage effectiveness of the on-premise room.")
    staff_fte: float | None = Field(None, ge=0, le=10_000, description="Full-time staff running on-premise GPUs.")
    staff_usd_per_year: Money | None = Field(None, ge=0, le=10_000_000, description="Fully loaded cost per FTE.")
    space_usd_per_gpu_month: Money | None = Field(None, ge=0, le=100_000, description="Rack space per GPU.")
    carbon_region: str | None = Field(None, max_length=32, description="Grid of on-premise power (catalog key).")
    cloud_providers: list[str] | None = Field(None, max_length=32, description="Only these catalog providers.")
    api_usd_per_second: Money | None = Field(None, ge=0, le=1000, description="A commercial API's price per second.")
    egress_gb_per_video: float | None = Field(None, ge=0, le=10_000, description="GB sent out per video.")
    storage_months: float | None = Field(None, ge=0, le=1200, description="Months a video is kept.")
    training_gpu_hours_per_month: float | None = Field(
        None, ge=0, le=10_000_000, description="GPU-hours of fine-tuning a month (default from fine_tuning)."
    )
    vpc_premium: float | None = Field(
        None, ge=0, le=10, description="Extra share a specialised cloud charges for a private, dedicated VPC."
    )
    idle_power_share: float | None = Field(
        None, ge=0, le=1, description="Share of its rated power an idle GPU (and its host share) still draws."
    )
    video_gb_per_second: float | None = Field(
        None, ge=0, le=100, description="GB of encoded video per second of output (sizes storage and egress)."
    )


class CampaignFigures(_Strict):
    """What one campaign cost and returned (entered, or measured from the outcomes posted for ``campaign`` and/or
    ``asset``)."""

    label: str = Field("", max_length=200)
    campaign: str | None = Field(
        None, max_length=128, description="Measure views, clicks, conversions and revenue from posted outcomes."
    )
    asset: str | None = Field(
        None, min_length=1, max_length=64, description="Measure from the outcomes posted for this asset (one video)."
    )
    spend_usd: Money | None = Field(None, ge=0, le=10**12)
    views: int | None = Field(None, ge=0, le=10**13)
    clicks: int | None = Field(None, ge=0, le=10**13)
    conversions: int | None = Field(None, ge=0, le=10**13)
    conversion_rate: float | None = Field(None, ge=0, le=1, description="Conversions per view, when not counted.")
    revenue_usd: Money | None = Field(None, ge=0, le=10**13)
    revenue_per_conversion_usd: Money | None = Field(None, ge=0, le=10**9)

    @property
    def measured_from(self) -> str | None:
        """Which posted outcomes measure it, in words (``campaign 'x'``, ``asset 'y'`` or both); None: none."""
        parts = [f"{kind} {value!r}" for kind, value in (("campaign", self.campaign), ("asset", self.asset)) if value]
        return ", ".join(parts) or None

    @property
    def measure_key(self) -> str | None:
        """The key of its measured totals: the campaign's name, ``asset:ID``, or ``NAME+asset:ID``."""
        parts = [p for p in (self.campaign, f"asset:{self.asset}" if self.asset else None) if p]
        return "+".join(parts) or None


class Efficiency(_Strict):
    """Production effort per video without and with generated video."""

    baseline_hours_per_video: float = Field(0, ge=0, le=100_000)
    ai_hours_per_video: float = Field(0, ge=0, le=100_000, description="Prompting and review hours per video.")
    hourly_rate_usd: Money = Field(Decimal(0), ge=0, le=100_000)
    baseline_cost_per_video_usd: Money = Field(
        Decimal(0), ge=0, le=10**9, description="Out-of-pocket production cost per video without AI (shoot, agency)."
    )


class StrategicFactor(_Strict):
    """One strategic-value factor, scored 0–5 with why."""

    factor: str = Field(..., min_length=1, max_length=100)
    score: float = Field(..., ge=0, le=5)
    weight: float = Field(1.0, ge=0, le=1000)
    why: str = Field("", max_length=1000)
    value_usd_per_year: Money | None = Field(
        None, ge=0, le=10**12, description="Money the organisation puts on it a year, if it does (else none)."
    )


class RoiInputs(_Strict):
    """Inputs of the three-pillar ROI model: efficiency gains, performance lift, strategic value."""

    efficiency: Efficiency | None = None
    ai_cost_per_video_usd: Money | None = Field(
        None, ge=0, le=10**6, description="What generating one video costs (default: the cheapest video API's price)."
    )
    baseline: CampaignFigures | None = Field(None, description="The campaign compared against (e.g. influencers).")
    ai: CampaignFigures | None = Field(None, description="The campaign made with generated video.")
    strategic: list[StrategicFactor] = Field(default_factory=list, max_length=50)


class Scenario(_Strict):
    """One organisation's facts, weights and assumptions."""

    name: str = Field("scenario", min_length=1, max_length=200)
    description: str = Field("", max_length=4000)
    volume_per_month: int = Field(..., ge=0, le=1_000_000_000, description="Videos a month, today.")
    seconds_per_video: float = Field(..., gt=0, le=3600)
    growth_per_year: float = Field(0.0, ge=-0.99, le=100, description="Volume growth a year, as a fraction.")
    latency_target_s: float = Field(..., gt=0, le=10_000_000, description="Request to finished video, seconds.")
    data_classes: list[DataClass] = Field(..., min_length=1, max_length=4)
    gpu_ops_experience: GpuOps
    fine_tuning: FineTuning
    horizon_years: float = Field(..., gt=0, le=15)
    weights: Weights = Weights()
    prices: PriceAssumptions = PriceAssumptions()
    roi: RoiInputs | None = None

    @field_validator("data_classes")
    @classmethod
    def _distinct(cls, value: list[DataClass]) -> list[DataClass]:
        if len(set(value)) != len(value):
            raise ValueError("list each data class once")
        return value

    @property
    def sensitivity(self) -> DataClass:
        """The most sensitive data class the workload touches."""
        return max(self.data_classes, key=lambda c: c.rank)

    def volume_in_month(self, month: int) -> float:
        """Videos in month ``month`` (0 = the first) with compound yearly growth."""
        return float(self.volume_per_month * (1.0 + self.growth_per_year) ** (month / 12.0))

    @property
    def months(self) -> int:
        """Whole months in the horizon (at least 1)."""
        return max(1, round(self.horizon_years * 12))

    def total_videos(self) -> float:
        """Videos over the horizon, growth included."""
        return sum(self.volume_in_month(m) for m in range(self.months))


def _error(exc: ValidationError, source: str, root: Any) -> InvalidParameter:
    first = exc.errors()[0]
    loc = [p for p in first["loc"] if isinstance(p, str | int)]
    field = ".".join(str(p) for p in loc) or "scenario"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "missing":
        message = "required field is missing"
    elif first["type"] == "extra_forbidden":
        message = "unknown field"
    line = safeyaml.line_of(root, loc) if root is not None else None
    where = f"{source}: line {line}: " if line else f"{source}: "
    return InvalidParameter(field, f"{where}field {field!r}: {message}")


def parse_scenario(text: str, source: str = "scenario") -> Scenario:
    """A scenario from YAML text; InvalidParameter naming ``source``, the line and the field."""
    data, root = safeyaml.load(text, source, "scenario", MAX_SCENARIO_BYTES)
    if not isinstance(data, dict):
        raise InvalidParameter("scenario", f"{source}: a scenario is a mapping of fields (volume_per_month: …)")
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise _error(exc, source, root) from None


def load_scenario(path: Path) -> Scenario:
    """A scenario file; its name defaults to the file's stem. InvalidParameter when unreadable or invalid."""
    text = safeyaml.read_bounded(path, "scenario", MAX_SCENARIO_BYTES)
    scenario = parse_scenario(text, str(path))
    if "name" not in scenario.model_fields_set:
        scenario = scenario.model_copy(update={"name": path.stem})
    return scenario
