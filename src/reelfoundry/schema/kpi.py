"""The KPI scorecard (``GET /v1/kpi``): the blueprint's 2025 figures, measured from the platform's own records.

Every figure says what it is (``definition``), what it rests on (``n``) and where it came from (``provenance``:
all of these are ``measured`` from jobs, cost records, assets, fine-tunes, model cards and posted outcomes).
A figure that cannot be computed is ``available: false`` with the ``reason``, never a zero.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from reelfoundry.schema.cost import DecimalString

_STRICT = ConfigDict(extra="forbid", protected_namespaces=())


class KpiFigure(BaseModel):
    """One KPI: its headline value (exact decimal string), unit, definition, sample size and provenance."""

    model_config = _STRICT

    available: bool
    value: DecimalString | None = Field(None, description="The headline figure; null when not available.")
    unit: str = Field(..., description="ratio (0–1), s, h, USD, kWh, kg CO2e.")
    n: int = Field(..., description="How many jobs, assets, campaigns… the figure is based on.")
    definition: str
    provenance: Literal["measured"] = "measured"
    reason: str | None = Field(None, description="Why the figure is not available.")


class DeviceUtilization(BaseModel):
    """Busy and idle device time of one device class (cpu, H100, …)."""

    model_config = _STRICT

    device: str
    jobs: int
    busy_device_s: float
    idle_device_s: float
    utilization: DecimalString | None


class GpuUtilization(KpiFigure):
    """Share of the worker devices' time that ran jobs."""

    busy_device_s: float = 0.0
    idle_device_s: float = 0.0
    devices: list[DeviceUtilization] = Field(default_factory=list)


class WaitStats(BaseModel):
    """Percentiles of a set of waits (nearest rank)."""

    model_config = _STRICT

    n: int
    p50_s: float | None
    p95_s: float | None


class QueueWait(KpiFigure):
    """Submission → start of generation jobs; fine-tunes apart."""

    p50_s: float | None = None
    p95_s: float | None = None
    finetune: WaitStats = Field(default_factory=lambda: WaitStats(n=0, p50_s=None, p95_s=None))


class CostPerInference(KpiFigure):
    """Spend of ended generation jobs per job and per succeeded video."""

    jobs: int = 0
    succeeded: int = 0
    total_usd: DecimalString | None = None
    per_succeeded_video_usd: DecimalString | None = None


class CampaignVelocity(BaseModel):
    """One campaign: its first job and its first published asset."""

    model_config = _STRICT

    tenant_id: str
    campaign: str
    first_job_at: datetime
    first_published_at: datetime | None
    hours: float | None = Field(None, description="null: not published yet (pending).")


class InnovationVelocity(KpiFigure):
    """Median hours from a campaign's first job to its first published asset."""

    published: int = 0
    pending: int = 0
    campaigns: list[CampaignVelocity] = Field(default_factory=list)


class ModelAgilityEntry(BaseModel):
    """One model card added over the API: registered → approved → first production job."""

    model_config = _STRICT

    model: str
    registered_at: datetime
    approved_at: datetime | None
    first_job_at: datetime | None
    registered_to_approved_h: float | None
    registered_to_first_job_h: float | None


class ModelAgility(KpiFigure):
    """Median hours from a card's registration to its first production job."""

    pending: int = 0
    models: list[ModelAgilityEntry] = Field(default_factory=list)


class DataAssetLeverage(KpiFigure):
    """Share of the training-eligible assets that some succeeded fine-tune used."""

    eligible: int = 0
    used: int = 0


class CampaignOutcomeCost(BaseModel):
    """Infrastructure cost and conversions of one campaign."""

    model_config = _STRICT

    campaign: str | None
    cost_usd: DecimalString
    conversions: int
    cost_per_conversion_usd: DecimalString | None


class CostPerOutcome(KpiFigure):
    """Infrastructure cost per posted conversion."""

    cost_usd: DecimalString | None = None
    conversions: int = 0
    campaigns: list[CampaignOutcomeCost] = Field(default_factory=list)


class ApprovalRate(KpiFigure):
    """Approved (incl. published) ÷ decided reviews."""

    approved: int = 0
    rejected: int = 0


class PerVideo(KpiFigure):
    """A total of generation jobs divided by their succeeded videos."""

    total: DecimalString | None = None
    videos: int = 0


class TrendPoint(BaseModel):
    """One day of a trend."""

    model_config = _STRICT

    day: str = Field(..., description="UTC date, YYYY-MM-DD.")
    value: DecimalString | None
    n: int


class Trend(BaseModel):
    """A daily series of one KPI (only days with data)."""

    model_config = _STRICT

    name: str
    unit: str
    points: list[TrendPoint]


class Scorecard(BaseModel):
    """Answer of ``GET /v1/kpi``: the KPI scorecard over a window, with daily trends."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, title="Scorecard")

    tenant_id: str | None = Field(None, description="The tenant reported on; null: every tenant.")
    start: datetime | None = Field(None, alias="from", description="Inclusive; null: from the beginning.")
    end: datetime | None = Field(None, alias="to", description="Exclusive; null: up to now.")
    generated_at: datetime
    gpu_utilization: GpuUtilization
    queue_wait_s: QueueWait
    cost_per_inference_usd: CostPerInference
    innovation_velocity: InnovationVelocity
    model_agility: ModelAgility
    data_asset_leverage: DataAssetLeverage
    cost_per_business_outcome_usd: CostPerOutcome
    approval_rate: ApprovalRate
    energy_kwh_per_video: PerVideo
    co2e_kg_per_video: PerVideo
    trends: list[Trend]
