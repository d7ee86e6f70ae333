"""Pricing one job: money, energy and carbon from measured usage and the rates of where it ran.

Pure arithmetic on Decimal; the engine measures, this module prices. The rules:

- compute $   = device-seconds / 3600 × $/device-hour × device share (a MIG slice or fraction < 1);
                for a job on a vendor's API, the vendor's charge: its $/video-second × seconds delivered
                (the worker only waited, so no local device-seconds or energy are charged)
- idle $      = idle device-seconds charged to the job (see :class:`IdleLedger`) priced the same way
- energy kWh  = measured device energy (NVML, RAPL) or TDP × share × utilisation × seconds, × PUE
- CO2e kg     = kWh × grid intensity (g/kWh) / 1000
- storage $   = stored bytes / 1e9 × $/GB-month × retention months (with storage tiers, once an object moves:
                days hot × hot $/GB-month + days cold × cold $/GB-month, over the retention)
- egress $    = delivered bytes / 1e9 × $/GB (added when content is served)
- total $     = compute + idle + storage + egress
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from decimal import Decimal
from typing import Any

from reelfoundry.clock import SYSTEM_CLOCK, Clock
from reelfoundry.errors import InvalidParameter

USD = Decimal("0.0000000001")  # stored precision: 1e-10 dollars
KWH = Decimal("0.000000001")
SHARE = Decimal("0.000000001")  # device shares keep 9 places (as the store keeps them)
DAYS_PER_MONTH = Decimal("30.436875")  # 365.25 / 12
J_PER_KWH = Decimal(3_600_000)
#: MIG profiles by compute slices out of 7 (A100/H100/H200: "1g.10gb", "3g.40gb", ...).
_MIG = re.compile(r"^(?P<slices>[1-7])g\.\d+gb$")


def parse_share(value: str | float | Decimal) -> Decimal:
    """A device share: a fraction in (0, 1], or a MIG profile like ``1g.10gb`` (= 1/7 of the GPU)."""
    if isinstance(value, str):
        match = _MIG.match(value.strip().lower())
        if match:
            return (Decimal(match["slices"]) / Decimal(7)).quantize(SHARE)
        try:
            value = Decimal(value)
        except ArithmeticError:
            raise InvalidParameter(
                "worker_device_share", f"{value!r} is neither a fraction nor a MIG profile"
            ) from None
    share = Decimal(str(value))
    if not Decimal(0) < share <= Decimal(1):
        raise InvalidParameter("worker_device_share", f"device share must be in (0, 1], got {share}")
    return share.quantize(SHARE)  # as stored, so a record can be recomputed exactly


@dataclass(frozen=True)
class Rates:
    """Where a job ran and what that costs: one snapshot, stored with the job so its price never drifts."""

    catalog_version: str
    provider: str
    region: str
    pricing_model: str
    device: str
    device_share: Decimal
    usd_per_device_hour: Decimal
    tdp_w: Decimal
    pue: Decimal
    carbon_region: str
    g_co2e_per_kwh: Decimal
    storage_usd_per_gb_month: Decimal
    retention_days: Decimal
    egress_usd_per_gb: Decimal

    @property
    def usd_per_share_second(self) -> Decimal:
        """What one second of this job's share of the device costs."""
        return self.usd_per_device_hour * self.device_share / Decimal(3600)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready (Decimals as strings)."""
        return {k: str(v) if isinstance(v, Decimal) else v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Rates:
        """The inverse of :meth:`to_json`."""
        decimals = {f.name for f in fields(cls) if f.type == "Decimal"}  # annotations are strings here
        values: dict[str, Any] = {k: Decimal(v) if k in decimals else v for k, v in data.items()}
        return cls(**values)


@dataclass(frozen=True)
class Usage:
    """What one job used, measured around its backend calls (all attempts together)."""

    device_seconds: float = 0.0
    idle_seconds: float = 0.0
    #: Energy drawn by the job's share of the device, in joules, and how it was found.
    energy_j: float = 0.0
    energy_method: str = "none"
    stored_bytes: int = 0
    video_seconds: float = 0.0
    #: What a vendor API charged for the job (its price per video second × the seconds it delivered).
    vendor_usd: Decimal = Decimal(0)


@dataclass(frozen=True)
class VendorCharge:
    """One attempt on a vendor's API: whose, where, and what it charged (0 for one that delivered nothing)."""

    vendor: str
    region: str
    usd: Decimal


@dataclass(frozen=True)
class CostFigures:
    """A job's price; every money field is Decimal dollars."""

    compute_usd: Decimal
    idle_usd: Decimal
    storage_usd: Decimal
    egress_usd: Decimal
    total_usd: Decimal
    energy_kwh: Decimal
    co2e_kg: Decimal


def _usd(value: Decimal) -> Decimal:
    return value.quantize(USD)


def usd_text(value: Decimal) -> str:
    """Dollars as exact fixed-point text at the stored precision ("0.0001717009", never "1.7E-4")."""
    return format(_usd(value), "f")


def significant(value: Decimal, digits: int) -> str:
    """A decimal to ``digits`` significant figures, never in exponent notation (for people, not records)."""
    if value == 0:
        return "0"
    return format(value.quantize(Decimal(1).scaleb(value.adjusted() - digits + 1)), "f")


def price(usage: Usage, rates: Rates | None, egress_bytes: int = 0) -> CostFigures:
    """Price a job's usage at ``rates`` (None: no local rates; only a vendor's charge, if any, is counted)."""
    vendor = _usd(usage.vendor_usd)
    if rates is None:
        zero = Decimal(0)
        return CostFigures(vendor, zero, zero, zero, vendor, zero, zero)
    per_second = rates.usd_per_share_second
    compute = _usd(Decimal(str(usage.device_seconds)) * per_second) + vendor
    idle = _usd(Decimal(str(usage.idle_seconds)) * per_second)
    months = rates.retention_days / DAYS_PER_MONTH
    storage = _usd(Decimal(usage.stored_bytes) / Decimal(10**9) * rates.storage_usd_per_gb_month * months)
    egress = egress_usd(egress_bytes, rates.egress_usd_per_gb)
    kwh = (Decimal(str(usage.energy_j)) / J_PER_KWH * rates.pue).quantize(KWH)
    co2e = (kwh * rates.g_co2e_per_kwh / Decimal(1000)).quantize(KWH)
    return CostFigures(compute, idle, storage, egress, compute + idle + storage + egress, kwh, co2e)


def tiered_storage_usd(
    nbytes: int,
    hot_usd_per_gb_month: Decimal,
    cold_usd_per_gb_month: Decimal,
    hot_days: Decimal,
    retention_days: Decimal,
) -> Decimal:
    """Storage of ``nbytes`` kept ``retention_days``: the first ``hot_days`` (clamped to the retention) at the hot
    tier's price, the rest at the cold tier's (time-weighted; all hot equals :func:`price`'s storage part)."""
    hot = min(max(hot_days, Decimal(0)), retention_days)
    gb_days = Decimal(nbytes) / Decimal(10**9)
    return _usd(
        gb_days * (hot * hot_usd_per_gb_month + (retention_days - hot) * cold_usd_per_gb_month) / DAYS_PER_MONTH
    )


def egress_usd(nbytes: int, usd_per_gb: Decimal) -> Decimal:
    """What delivering ``nbytes`` to the internet costs at ``usd_per_gb``."""
    return _usd(Decimal(nbytes) / Decimal(10**9) * usd_per_gb)


@dataclass
class IdleLedger:
    """Idle device time of one node's worker slots, charged to the jobs that follow it (OpenCost-style:
    total = workload + idle, so what a video costs includes the time the device waited for it).

    Each tick adds ``(slots - busy) × elapsed`` idle slot-seconds, ``busy`` being the count the previous
    tick reported (it held for the interval); a job claimed on the node takes what has built up since
    the previous claim. What has built up after the last job waits for the next
    one (reports show it as unattributed idle until then).

    ``clock``: a :class:`~reelfoundry.clock.Clock` (its ``monotonic()`` is read) or a function returning seconds.
    """

    slots: int
    clock: Clock | Callable[[], float] = SYSTEM_CLOCK
    _pending: float = 0.0
    _last: float | None = None
    _busy: int = 0
    #: Slot-seconds since start, idle and busy (for utilisation metrics).
    idle_total: float = 0.0
    busy_total: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def tick(self, busy: int) -> None:
        """Account the time since the last tick, then note that ``busy`` slots run jobs from now on."""
        with self._lock:
            now = self.clock.monotonic() if isinstance(self.clock, Clock) else self.clock()
            if self._last is not None:
                elapsed = max(0.0, now - self._last)
                idle = max(0, self.slots - self._busy) * elapsed
                self._pending += idle
                self.idle_total += idle
                self.busy_total += min(self._busy, self.slots) * elapsed
            self._last, self._busy = now, busy

    def take(self, busy: int) -> float:
        """Idle slot-seconds for the job being claimed now (and start a new gap)."""
        self.tick(busy)
        with self._lock:
            idle, self._pending = self._pending, 0.0
            return idle

    @property
    def pending(self) -> float:
        """Idle slot-seconds not yet charged to any job."""
        return self._pending

    @property
    def busy(self) -> int:
        """Slots running jobs as of the last tick."""
        return self._busy
