"""CostRecord: what one finished job cost, in money, energy and carbon, and to whom it is attributed."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

_MONEY = 'US dollars as a decimal string (exact; e.g. "0.0000123450").'


def _fixed(value: Decimal) -> str:
    return format(value, "f")


#: An exact decimal, written in JSON as a fixed-point string ("0.0001717009", never "1.7E-4" or a float).
DecimalString = Annotated[
    Decimal,
    PlainSerializer(_fixed, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$"}, mode="serialization"),
]


class CostRecord(BaseModel):
    """One per finished job (succeeded, failed or cancelled). Decimal fields are JSON strings, never floats."""

    model_config = ConfigDict(title="CostRecord", protected_namespaces=())

    job_id: str
    tenant_id: str
    project: str | None = None
    campaign: str | None = None
    model: str
    state: str = Field(..., description="The job's final state.")
    total_usd: DecimalString = Field(..., description="compute + idle + storage + egress. " + _MONEY)
    compute_usd: DecimalString = Field(
        ..., description="device-seconds × $/device-hour × share, or a vendor API's charge (device api). " + _MONEY
    )
    idle_usd: DecimalString = Field(..., description="Idle device time charged to this job (OpenCost-style). " + _MONEY)
    storage_usd: DecimalString = Field(..., description="Stored bytes × tier $/GB-month × retention. " + _MONEY)
    egress_usd: DecimalString = Field(..., description="Bytes delivered × $/GB, added as content is served. " + _MONEY)
    energy_kwh: DecimalString = Field(..., description="Energy at the facility (device energy × PUE), decimal string.")
    co2e_kg: DecimalString = Field(
        ..., description="kg CO2e: energy × grid intensity of carbon_region, decimal string."
    )
    device_seconds: float = Field(..., description="Seconds the device (share) was held by the job, all attempts.")
    idle_seconds: float = Field(..., description="Idle device-seconds charged to the job.")
    energy_method: str | None = Field(None, description="nvml, rapl, model (TDP × utilisation) or none.")
    device: str | None = Field(None, description='Device class, e.g. "cpu", "H100", "A100-80GB".')
    device_share: DecimalString | None = Field(None, description="Fraction of the device (MIG slice or fraction).")
    provider: str | None = None
    region: str | None = None
    pricing_model: str | None = None
    usd_per_device_hour: DecimalString | None = None
    pue: DecimalString | None = None
    carbon_region: str | None = None
    g_co2e_per_kwh: DecimalString | None = None
    catalog_version: str | None = Field(None, description="Version of the price catalog used.")
    stored_bytes: int
    egress_bytes: int
    video_seconds: float
    created_at: datetime
