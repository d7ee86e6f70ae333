"""The rates of this node's workers, from settings and the price catalog (checked once, at start)."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

from reelfoundry.config import Settings
from reelfoundry.finops.catalog import Catalog
from reelfoundry.finops.meter import Rates, parse_share

#: GPU device classes by a substring of the CUDA device name, most specific first.
_GPU_CLASSES = [
    ("H100 PCIe", "H100-PCIe"),
    ("H100", "H100"),
    ("H200", "H200"),
    ("B200", "B200"),
    ("L40S", "L40S"),
    ("A100-SXM4-80GB", "A100-80GB"),
    ("A100 80GB", "A100-80GB"),
    ("A100", "A100-40GB"),
]
#: Carbon region of a provider's region when the catalog has no row for ``<provider>:<region>``.
_PROVIDER_COUNTRY = {"coreweave": "US", "lambda": "US"}


def gpu_class(name: str) -> str | None:
    """The catalog's device class of a CUDA device name ("NVIDIA H100 80GB HBM3" → "H100")."""
    for needle, device in _GPU_CLASSES:
        if needle in name:
            return device
    return None


def detect_device() -> str:
    """``cpu``, or the class of the first CUDA device (``unknown-gpu`` when the catalog has none)."""
    if not Path("/proc/driver/nvidia").exists() and not shutil.which("nvidia-smi"):
        return "cpu"  # no NVIDIA driver: spare the torch import
    try:
        import torch

        if torch.cuda.is_available():
            return gpu_class(torch.cuda.get_device_name(0)) or "unknown-gpu"
    except Exception:  # no torch or no driver: a CPU worker
        pass
    return "cpu"


def worker_rates(settings: Settings, catalog: Catalog, device: str | None = None) -> Rates:
    """What an hour of this node's worker device costs, where it runs and how clean its power is."""
    device = settings.worker_device or device or detect_device()
    provider = settings.worker_provider
    if settings.worker_usd_per_device_hour is not None:
        usd = settings.worker_usd_per_device_hour
        region = settings.worker_region or "local"
    else:
        row = catalog.device_price(provider, device, settings.worker_pricing_model, settings.worker_region)
        usd, region = row.usd_per_device_hour, row.region
    tdp = Decimal(str(settings.worker_tdp_w)) if settings.worker_tdp_w is not None else catalog.watts(device)
    pue = Decimal(str(settings.worker_pue)) if settings.worker_pue is not None else catalog.pue_for(provider)
    carbon_region = settings.carbon_region or _carbon_region(catalog, provider, region)
    storage = catalog.storage_price(settings.storage_provider or provider, settings.storage_tier)
    return Rates(
        catalog_version=catalog.version,
        provider=provider,
        region=region,
        pricing_model=settings.worker_pricing_model,
        device=device,
        device_share=parse_share(settings.worker_device_share)
        if settings.worker_device_share is not None
        else parse_share(Decimal(1) / Decimal(max(settings.worker_slots, 1))),
        usd_per_device_hour=Decimal(usd),
        tdp_w=tdp,
        pue=pue,
        carbon_region=carbon_region,
        g_co2e_per_kwh=catalog.intensity(carbon_region).g_co2e_per_kwh,
        storage_usd_per_gb_month=storage.usd_per_gb_month,
        retention_days=Decimal(str(settings.storage_retention_days)),
        egress_usd_per_gb=catalog.egress_price(provider).usd_per_gb,
    )


def _carbon_region(catalog: Catalog, provider: str, region: str) -> str:
    known = {r.region for r in catalog.carbon}
    if f"{provider}:{region}" in known:
        return f"{provider}:{region}"
    return _PROVIDER_COUNTRY.get(provider, "world")
