"""The price catalog: a versioned data file of public prices and constants, each row with source and date."""

from __future__ import annotations

import functools
import json
from decimal import Decimal
from importlib import resources
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from reelfoundry.errors import InvalidParameter


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(..., min_length=1, description="Where the figure was read (URL or publication).")
    as_of: str = Field(..., min_length=1, description="When the figure was valid or read.")
    note: str = ""


class DevicePrice(_Row):
    """What one device (a GPU, or a CPU instance) costs per hour under one pricing model."""

    provider: str
    device: str
    pricing_model: str
    region: str
    usd_per_device_hour: Decimal
    instance: str | None = None
    vcpus: int | None = None


class EgressPrice(_Row):
    """Data transfer out to the internet, per GB."""

    provider: str
    tier: str
    usd_per_gb: Decimal


class StoragePrice(_Row):
    """Stored data per GB-month, for one provider's tier."""

    provider: str
    tier: str
    usd_per_gb_month: Decimal


class DevicePower(_Row):
    """A device's rated power (TDP) in watts."""

    device: str
    watts: Decimal


class Pue(_Row):
    """Power usage effectiveness of where a provider's machines run."""

    provider: str
    value: Decimal


class CarbonIntensity(_Row):
    """Average grid carbon intensity of a region (location-based)."""

    region: str
    g_co2e_per_kwh: Decimal


class OnPremInput(_Row):
    """An input for on-premise TCO: a purchase price, a depreciation period, staff."""

    item: str
    value: str
    unit: str


class VideoApiPrice(_Row):
    """A commercial video-generation API's price per second of output."""

    provider: str
    model: str
    usd_per_second: Decimal


class Catalog(BaseModel):
    """Everything the meter prices with. Money is Decimal; rows keep their source and date."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str
    currency: str
    about: str = ""
    gpu: list[DevicePrice]
    cpu: list[DevicePrice]
    egress: list[EgressPrice]
    storage: list[StoragePrice]
    power: list[DevicePower]
    pue: list[Pue]
    carbon: list[CarbonIntensity]
    onprem: list[OnPremInput]
    video_api: list[VideoApiPrice]

    #: The sections ``reelfoundry prices --kind`` can show.
    SECTIONS: ClassVar[tuple[str, ...]] = (
        "gpu",
        "cpu",
        "egress",
        "storage",
        "power",
        "pue",
        "carbon",
        "onprem",
        "video_api",
    )

    def rows(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Rows of one section (or all, each with its ``kind``), as JSON-ready dicts."""
        kinds = [kind] if kind else list(self.SECTIONS)
        out = []
        for k in kinds:
            for row in getattr(self, k):
                out.append({"kind": k, **row.model_dump(mode="json")})
        return out

    def device_price(self, provider: str, device: str, pricing_model: str, region: str | None) -> DevicePrice:
        """The price of a device; InvalidParameter naming what exists when there is no such row."""
        rows = [r for r in (*self.gpu, *self.cpu) if r.provider == provider and r.device == device]
        if not rows:
            offered = sorted({f"{r.provider}/{r.device}" for r in (*self.gpu, *self.cpu)})
            raise InvalidParameter(
                "worker_device", f"no price for {provider}/{device}; the catalog has {', '.join(offered)}"
            )
        priced = [r for r in rows if r.pricing_model == pricing_model]
        if not priced:
            models = sorted({r.pricing_model for r in rows})
            raise InvalidParameter(
                "worker_pricing_model",
                f"{provider}/{device} has no {pricing_model!r} price; it has {', '.join(models)}",
            )
        in_region = [r for r in priced if region is None or r.region == region]
        if not in_region:
            regions = sorted({r.region for r in priced})
            raise InvalidParameter(
                "worker_region", f"{provider}/{device} {pricing_model} is priced in {', '.join(regions)}"
            )
        return in_region[0]

    def watts(self, device: str) -> Decimal:
        """The rated power of a device class ("cpu" for a CPU package)."""
        for row in self.power:
            if row.device == device:
                return row.watts
        raise InvalidParameter("worker_tdp_w", f"no rated power for device {device!r}; set worker_tdp_w")

    def pue_for(self, provider: str) -> Decimal:
        """The PUE assumed for a provider (1.0 for a local machine)."""
        for row in self.pue:
            if row.provider == provider:
                return row.value
        return next(r.value for r in self.pue if r.provider == "onprem")

    def intensity(self, region: str) -> CarbonIntensity:
        """Grid carbon intensity of a region key (``world``, ISO country code, ``aws:<region>``)."""
        for row in self.carbon:
            if row.region == region:
                return row
        known = ", ".join(r.region for r in self.carbon)
        raise InvalidParameter("carbon_region", f"no carbon intensity for {region!r}; the catalog has {known}")

    def storage_price(self, provider: str, tier: str | None) -> StoragePrice:
        """A storage tier's price (the provider's first listed tier when none is named)."""
        rows = [r for r in self.storage if r.provider == provider and (tier is None or r.tier == tier)]
        if not rows:
            tiers = ", ".join(f"{r.provider}/{r.tier}" for r in self.storage)
            raise InvalidParameter("storage_tier", f"no storage price for {provider}/{tier}; the catalog has {tiers}")
        return rows[0]

    def egress_price(self, provider: str) -> EgressPrice:
        """The first paid tier of a provider's internet egress (free allowances are not netted)."""
        rows = [r for r in self.egress if r.provider == provider]
        if not rows:
            return next(r for r in self.egress if r.provider == "local")
        paid = [r for r in rows if r.usd_per_gb > 0]
        return paid[0] if paid else rows[0]


@functools.cache
def load_catalog() -> Catalog:
    """The catalog shipped in the package (read once)."""
    text = resources.files("reelfoundry.finops").joinpath("data/prices.json").read_text(encoding="utf-8")
    return Catalog.model_validate(json.loads(text))
