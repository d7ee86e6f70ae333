"""Total cost of ownership (TCO) and its energy and carbon (E-TCO) for a scenario's video workload.

Every deployment the price catalog can price is costed month by month over the scenario's horizon, with the
volume growing as :meth:`Scenario.volume_in_month` says:

- ``on_premise``: owned GPUs sized for the peak month at the target utilisation; CapEx straight-line over the
  amortisation period, power (rated power × busy hours + an idle share for idle hours), cooling
  ((PUE − 1) × that energy), space, staff, local storage; no egress.
- ``specialised_cloud_vpc`` (CoreWeave, Lambda) and ``hyperscaler_cloud`` (AWS): one option per provider and
  pricing model. On-demand and spot bill the instances kept up (busy hours ÷ utilisation); reserved and
  capacity blocks bill the fleet sized for the peak month around the clock. Specialists add a VPC premium.
- ``public_cloud_api``: each video API row, $/second × seconds × videos.
- ``hybrid``: a private base sized for the first year's average load, on-demand specialist GPUs above it.

Fine-tuning GPU-hours are costed where each option would run them and reported as ``training_usd``; the
rest is ``inference_usd``. Every figure says where it came from: a catalog row (``source``, ``as_of``), the
scenario (``assumption``), a documented default of this module (``assumption``, with the reason) or the
platform's own cost records (``measured``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from reelfoundry.errors import InvalidParameter
from reelfoundry.finops.catalog import Catalog, DevicePrice, load_catalog
from reelfoundry.planning.scenario import FineTuning, GpuOps, Scenario

D = Decimal
HOURS_PER_MONTH = 730.0  # 8,760 hours a year / 12
CENT = D("0.01")

# --- Documented defaults: each is reported as an "assumption" with its reason --------------------------------

DEFAULT_DEVICE = "H100"
#: GPU-seconds to render one second of 720p video with an open video DiT on one H100. Wan 2.1 14B at 720p
#: takes about 30 minutes for a 5 s clip at 50 sampling steps (≈360 GPU-s per video second); production serving
#: uses step-distilled or cached samplers (4–8 steps, TeaCache-style reuse) that cut this about ninefold, while
#: LTX-Video runs near real time. 40 sits in the 30–60 range such a setup reaches.
GPU_SECONDS_PER_VIDEO_SECOND = 40.0
#: Average busy share of a fleet you keep up: interactive traffic has daily peaks, and queues need headroom to
#: meet a latency target; 60 % is a common planning figure for inference fleets.
UTILISATION = 0.6
#: An idle H100 draws roughly 60–100 W of its 700 W rating, and its share of the host (CPUs, NICs, fans)
#: keeps drawing too; a quarter of the rated power covers both.
IDLE_POWER_SHARE = 0.25
#: Electricity for an on-premise room: near the US commercial-sector average (EIA Electric Power Monthly,
#: 2024: about 12–13 ¢/kWh).
ELECTRICITY_USD_PER_KWH = D("0.12")
#: Floor space, racks and network per GPU-month in an owned room: an 8-GPU node (~10 kW) takes about a third
#: of a high-density rack at roughly $1,800 a rack-month.
SPACE_USD_PER_GPU_MONTH = D("75")
#: Full-time staff to run owned GPUs, by in-house experience: with none, an on-call team must be hired (three
#: people for round-the-clock cover); with some, a smaller addition; with strong, only the increment.
STAFF_FTE = {GpuOps.none: 3.0, GpuOps.some: 1.5, GpuOps.strong: 0.5}
#: Fine-tuning GPU-hours a month: a LoRA on a 14B video DiT takes roughly 10–20 GPU-hours, so "light" (a few
#: adapters a month) is 50; "heavy" (continuous adapters and larger fine-tunes on an 8-GPU node) is 1,000.
TRAINING_GPU_HOURS = {FineTuning.none: 0.0, FineTuning.light: 50.0, FineTuning.heavy: 1000.0}
#: A specialised cloud's surcharge for a private, dedicated VPC (isolated networking, dedicated nodes).
VPC_PREMIUM = 0.10
#: Encoded 720p H.264 at about 5 Mbit/s: 0.000625 GB per second of video.
VIDEO_GB_PER_SECOND = 0.000625
#: Months a video is kept in storage.
STORAGE_MONTHS = 12.0
#: On-premise grid when the scenario names none.
CARBON_REGION = "US"

SPECIALISTS = ("coreweave", "lambda")
HYPERSCALERS = ("aws",)
#: Pricing models that bill a committed fleet around the clock; every other model bills instances kept up.
COMMITTED = ("reserved", "capacity-block")
#: The catalog's on-premise rows this module reads (matched by their ``item``).
ONPREM_NODE = {"H100": ("8x H100 HGX node incl. InfiniBand (8x400G)", 8)}
ONPREM_GPU_MSRP = {"H100": "H100 SXM MSRP (per GPU)", "H200": "H200 MSRP (per GPU)", "A100-80GB": "A100 MSRP (per GPU)"}
ONPREM_DEPRECIATION = "GPU depreciation"
ONPREM_STAFF = "Staff: ML platform engineer, fully loaded"
#: Break-even volume search bound (videos a month).
MAX_VOLUME = 1_000_000_000
#: The most videos a month the model prices (growth over a long horizon can compound far past any real
#: workload, and money beyond this overflows exact decimal arithmetic).
MAX_MONTHLY_VOLUME = 1e12


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-")[:80]


def _dec(value: float) -> Decimal:
    return D(repr(float(value)))


def _sig(value: Decimal | float, digits: int = 4) -> float:
    """A number rounded to ``digits`` significant figures (for per-video figures)."""
    v = float(value)
    if v == 0 or not math.isfinite(v):
        return 0.0
    return round(v, digits - 1 - math.floor(math.log10(abs(v))))


def _cents(value: Decimal) -> float:
    return float(value.quantize(CENT))


def _catalog_source(row: Any, what: str) -> dict[str, Any]:
    return {"what": what, "kind": "catalog", "source": row.source, "as_of": row.as_of}


@dataclass(frozen=True)
class Figure:
    """One input of the model with its value and provenance."""

    name: str
    value: Any
    kind: str  # "catalog", "assumption" or "measured"
    why: str = ""
    source: str | None = None
    as_of: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready."""
        value = float(self.value) if isinstance(self.value, Decimal) else self.value
        out: dict[str, Any] = {"name": self.name, "value": value, "kind": self.kind}
        if self.why:
            out["why"] = self.why
        if self.source is not None:
            out["source"], out["as_of"] = self.source, self.as_of
        return out


@dataclass(frozen=True)
class Measured:
    """Figures measured from the platform's own cost records (``--from-usage``)."""

    videos: int
    jobs: int
    span_days: int
    video_seconds: float
    total_usd: Decimal
    energy_kwh: Decimal
    co2e_kg: Decimal

    @property
    def videos_per_month(self) -> float:
        """Videos over the measured span, scaled to 30 days."""
        return self.videos / self.span_days * 30.0

    @property
    def seconds_per_video(self) -> float:
        """Seconds of video delivered per succeeded job."""
        return self.video_seconds / self.videos

    @classmethod
    def from_usage_rows(cls, rows: list[dict[str, Any]]) -> Measured | None:
        """From ``reelfoundry usage --by day`` rows; None when they hold no delivered video."""
        from datetime import date

        days = [date.fromisoformat(str(r["day"])) for r in rows if r.get("day")]
        videos = sum(int(r["succeeded"]) for r in rows)
        seconds = sum(float(r["video_seconds"]) for r in rows)
        if not days or videos <= 0 or seconds <= 0:
            return None
        return cls(
            videos=videos,
            jobs=sum(int(r["jobs"]) for r in rows),
            span_days=(max(days) - min(days)).days + 1,
            video_seconds=seconds,
            total_usd=sum((D(str(r["total_usd"])) for r in rows), D(0)),
            energy_kwh=sum((D(str(r["energy_kwh"])) for r in rows), D(0)),
            co2e_kg=sum((D(str(r["co2e_kg"])) for r in rows), D(0)),
        )

    def apply(self, scenario: Scenario) -> Scenario:
        """The scenario with its volume and seconds per video replaced by the measured ones."""
        return scenario.model_copy(
            update={
                "volume_per_month": max(1, round(self.videos_per_month)),
                "seconds_per_video": self.seconds_per_video,
            }
        )

    def to_json(self) -> dict[str, Any]:
        """JSON-ready, every figure marked measured."""
        return {
            "kind": "measured",
            "videos": self.videos,
            "jobs": self.jobs,
            "span_days": self.span_days,
            "videos_per_month": round(self.videos_per_month, 2),
            "seconds_per_video": round(self.seconds_per_video, 3),
            "usd_per_video": _sig(self.total_usd / self.videos),
            "energy_kwh_per_video": _sig(self.energy_kwh / self.videos),
            "co2e_kg_per_video": _sig(self.co2e_kg / self.videos),
        }


@dataclass
class Inputs:
    """Every figure the model uses, resolved from the scenario, the catalog and the defaults."""

    device: str
    gpu_s_per_video_s: float
    utilisation: float
    idle_share: float
    kw: float  # rated power of one GPU, kW
    capex_per_gpu: Decimal
    amortisation_years: float
    electricity: Decimal
    pue: Decimal
    space: Decimal
    staff_fte: float
    staff_salary: Decimal
    carbon_region: str
    g_co2e_per_kwh: Decimal
    vpc_premium: float
    gb_per_video: float
    egress_gb_per_video: float
    storage_months: float
    training_h: float
    api_usd_per_second: Decimal | None
    providers: tuple[str, ...] | None
    figures: list[Figure] = field(default_factory=list)


def _onprem(catalog: Catalog, item: str) -> Any:
    return next((r for r in catalog.onprem if r.item == item), None)


def resolve(scenario: Scenario, catalog: Catalog) -> Inputs:
    """The model's inputs: the scenario's ``prices`` first, then the catalog, then the documented defaults."""
    p = scenario.prices
    figures: list[Figure] = []

    def pick(name: str, given: Any, default: Any, why: str) -> Any:
        if given is not None:
            figures.append(Figure(f"prices.{name}", given, "assumption", "the scenario's value"))
            return given
        figures.append(Figure(name, default, "assumption", why))
        return default

    device = p.device or DEFAULT_DEVICE
    if not any(r.device == device for r in catalog.gpu):
        known = ", ".join(sorted({r.device for r in catalog.gpu}))
        raise InvalidParameter("prices.device", f"prices.device {device!r} has no catalog price; known: {known}")
    figures.append(Figure("device", device, "assumption", "the scenario's value" if p.device else "default GPU"))
    power = next((r for r in catalog.power if r.device == device), None)
    if power is None:
        raise InvalidParameter("prices.device", f"prices.device {device!r} has no rated power in the catalog")
    figures.append(Figure(f"{device} rated power (W)", power.watts, "catalog", source=power.source, as_of=power.as_of))

    if p.gpu_capex_usd is not None:
        capex = pick("gpu_capex_usd", p.gpu_capex_usd, None, "")
    elif device in ONPREM_NODE:
        item, per_node = ONPREM_NODE[device]
        row = _onprem(catalog, item)
        capex = D(row.value) / per_node
        figures.append(
            Figure(f"capex per GPU ({item} ÷ {per_node})", capex, "catalog", source=row.source, as_of=row.as_of)
        )
    elif device in ONPREM_GPU_MSRP and _onprem(catalog, ONPREM_GPU_MSRP[device]) is not None:
        row = _onprem(catalog, ONPREM_GPU_MSRP[device])
        capex = D(row.value)
        figures.append(Figure(f"capex per GPU ({row.item})", capex, "catalog", source=row.source, as_of=row.as_of))
    else:
        raise InvalidParameter(
            "prices.gpu_capex_usd", f"the catalog has no purchase price for {device}; set prices.gpu_capex_usd"
        )
    if p.amortisation_years is not None:
        amortisation = pick("amortisation_years", p.amortisation_years, None, "")
    else:
        row = _onprem(catalog, ONPREM_DEPRECIATION)
        amortisation = float(row.value)
        figures.append(Figure("amortisation_years", amortisation, "catalog", source=row.source, as_of=row.as_of))
    if p.staff_usd_per_year is not None:
        salary = pick("staff_usd_per_year", p.staff_usd_per_year, None, "")
    else:
        row = _onprem(catalog, ONPREM_STAFF)
        salary = D(row.value)
        figures.append(Figure("staff_usd_per_year", salary, "catalog", source=row.source, as_of=row.as_of))
    if p.pue is not None:
        pue = pick("pue", p.pue, None, "")
    else:
        row = next(r for r in catalog.pue if r.provider == "onprem")
        pue = row.value
        figures.append(Figure("on-premise PUE", pue, "catalog", source=row.source, as_of=row.as_of))
    region = p.carbon_region or CARBON_REGION
    try:
        intensity = catalog.intensity(region)
    except InvalidParameter as exc:
        raise InvalidParameter("prices.carbon_region", f"prices.carbon_region: {exc.detail}") from None
    figures.append(
        Figure(
            f"on-premise grid {region} (g CO2e/kWh)",
            intensity.g_co2e_per_kwh,
            "catalog",
            source=intensity.source,
            as_of=intensity.as_of,
        )
    )
    gb = pick("video_gb_per_second", p.video_gb_per_second, VIDEO_GB_PER_SECOND, "720p H.264 at about 5 Mbit/s")
    gb_per_video = gb * scenario.seconds_per_video
    egress_gb = pick("egress_gb_per_video", p.egress_gb_per_video, gb_per_video, "each video delivered once")
    training = pick(
        "training_gpu_hours_per_month",
        p.training_gpu_hours_per_month,
        TRAINING_GPU_HOURS[scenario.fine_tuning],
        f"fine_tuning: {scenario.fine_tuning.value} (see TRAINING_GPU_HOURS)",
    )
    providers = tuple(p.cloud_providers) if p.cloud_providers is not None else None
    if providers is not None:
        offered = {r.provider for r in catalog.gpu}
        unknown = [x for x in providers if x not in offered]
        if unknown:
            raise InvalidParameter(
                "prices.cloud_providers", f"prices.cloud_providers: no catalog prices for {', '.join(unknown)}"
            )
    return Inputs(
        device=device,
        gpu_s_per_video_s=pick(
            "gpu_seconds_per_video_second",
            p.gpu_seconds_per_video_second,
            GPU_SECONDS_PER_VIDEO_SECOND,
            "open 720p video DiT on an H100 with a distilled/cached sampler",
        ),
        utilisation=pick("utilisation", p.utilisation, UTILISATION, "planning headroom for peaks and queues"),
        idle_share=pick("idle_power_share", p.idle_power_share, IDLE_POWER_SHARE, "idle GPU and host draw"),
        kw=float(power.watts) / 1000.0,
        capex_per_gpu=capex,
        amortisation_years=amortisation,
        electricity=pick(
            "electricity_usd_per_kwh", p.electricity_usd_per_kwh, ELECTRICITY_USD_PER_KWH, "US commercial average"
        ),
        pue=pue,
        space=pick("space_usd_per_gpu_month", p.space_usd_per_gpu_month, SPACE_USD_PER_GPU_MONTH, "rack share"),
        staff_fte=pick(
            "staff_fte",
            p.staff_fte,
            STAFF_FTE[scenario.gpu_ops_experience],
            f"gpu_ops_experience: {scenario.gpu_ops_experience.value} (see STAFF_FTE)",
        ),
        staff_salary=salary,
        carbon_region=region,
        g_co2e_per_kwh=intensity.g_co2e_per_kwh,
        vpc_premium=pick("vpc_premium", p.vpc_premium, VPC_PREMIUM, "private dedicated VPC surcharge"),
        gb_per_video=gb_per_video,
        egress_gb_per_video=egress_gb,
        storage_months=pick("storage_months", p.storage_months, STORAGE_MONTHS, "videos kept a year"),
        training_h=training,
        api_usd_per_second=p.api_usd_per_second,
        providers=providers,
        figures=figures,
    )


@dataclass
class Option:
    """One way to run the workload, priced over the horizon."""

    id: str
    label: str
    deployment: str
    provider: str
    pricing_model: str
    device: str
    breakdown: dict[str, Decimal]
    capex: Decimal
    training: Decimal
    first_month: Decimal
    energy_kwh: Decimal
    carbon_region: str
    g_co2e_per_kwh: Decimal
    pue: Decimal
    sources: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    fleet_gpus: int | None = None
    #: CO2e when parts of the energy come from different grids (else energy × ``g_co2e_per_kwh``).
    co2e: Decimal | None = None

    @property
    def total(self) -> Decimal:
        """Everything over the horizon."""
        return sum(self.breakdown.values(), D(0))

    @property
    def total_usd(self) -> Decimal:
        """Everything over the horizon (unrounded; the JSON rounds to cents)."""
        return self.total

    @property
    def co2e_kg(self) -> Decimal:
        """Energy × grid intensity."""
        return self.co2e if self.co2e is not None else self.energy_kwh * self.g_co2e_per_kwh / 1000

    def to_json(self, videos: float, months: int) -> dict[str, Any]:
        """The option as the CLI's --json prints it (money in cents, per-video figures to 4 significant)."""
        total = self.total.quantize(CENT)
        training = self.training.quantize(CENT)
        capex = self.capex.quantize(CENT)
        count = _dec(videos)

        def per(value: Decimal) -> float:
            return _sig(value / count) if videos > 0 else 0.0

        return {
            "id": self.id,
            "label": self.label,
            "deployment": self.deployment,
            "provider": self.provider,
            "pricing_model": self.pricing_model,
            "device": self.device,
            "total_usd": float(total),
            "per_video_usd": per(self.total),
            "monthly_usd": _cents(self.total / months),
            "first_month_usd": _cents(self.first_month),
            "capex_usd": float(capex),
            "opex_usd": float(total - capex),
            "training_usd": float(training),
            "inference_usd": float(total - training),
            "energy_kwh": round(float(self.energy_kwh), 3),
            "co2e_kg": round(float(self.co2e_kg), 3),
            "energy_kwh_per_video": per(self.energy_kwh),
            "co2e_kg_per_video": per(self.co2e_kg),
            "fleet_gpus": self.fleet_gpus,
            "breakdown": {k: _cents(v) for k, v in self.breakdown.items()},
            "sources": self.sources,
            "notes": self.notes,
        }


@dataclass(frozen=True)
class Load:
    """The workload month by month: videos and busy GPU-hours."""

    videos: list[float]
    seconds_per_video: float
    gpu_s_per_video_s: float
    training_h: float

    def inference_h(self, month: int) -> float:
        """Busy GPU-hours of inference in ``month``."""
        return self.videos[month] * self.seconds_per_video * self.gpu_s_per_video_s / 3600.0

    @property
    def months(self) -> int:
        """Months in the horizon."""
        return len(self.videos)

    def fleet(self, utilisation: float, with_training: bool = True) -> int:
        """GPUs that carry the peak month at ``utilisation``."""
        extra = self.training_h if with_training else 0.0
        peak = max(self.inference_h(m) + extra for m in range(self.months))
        return math.ceil(peak / (HOURS_PER_MONTH * utilisation) - 1e-9) if peak > 0 else 0


def _add(acc: dict[str, Decimal], key: str, value: Decimal) -> None:
    acc[key] = acc.get(key, D(0)) + value


def _cloud_rows(catalog: Catalog, inp: Inputs, providers: tuple[str, ...]) -> list[DevicePrice]:
    """The cheapest row per (provider, pricing model) for the device (first listed region on ties)."""
    best: dict[tuple[str, str], DevicePrice] = {}
    for row in catalog.gpu:
        if row.device != inp.device or row.provider not in providers:
            continue
        if inp.providers is not None and row.provider not in inp.providers:
            continue
        key = (row.provider, row.pricing_model)
        if key not in best or row.usd_per_device_hour < best[key].usd_per_device_hour:
            best[key] = row
    return list(best.values())


def _cloud_region(catalog: Catalog, row: DevicePrice) -> str:
    if row.provider in HYPERSCALERS:
        key = f"{row.provider}:{row.region}"
        if any(c.region == key for c in catalog.carbon):
            return key
    return "US" if row.region.lower().startswith("us") else "world"


def _storage_egress(acc: dict[str, Decimal], load: Load, inp: Inputs, storage: Decimal, egress: Decimal) -> None:
    videos = _dec(sum(load.videos))
    _add(acc, "storage", videos * _dec(inp.gb_per_video * inp.storage_months) * storage)
    _add(acc, "egress", videos * _dec(inp.egress_gb_per_video) * egress)


def _owned(
    load: Load, inp: Inputs, n: int, busy: Callable[[int], float]
) -> tuple[dict[str, Decimal], Decimal, Decimal, list[Decimal]]:
    """Costs of ``n`` owned GPUs running ``busy(month)`` hours: (breakdown, training share, kWh, per month)."""
    acc: dict[str, Decimal] = {}
    training = D(0)
    kwh = D(0)
    monthly: list[Decimal] = []
    capex_month = inp.capex_per_gpu * n / _dec(inp.amortisation_years * 12)
    for m in range(load.months):
        hours = busy(m)
        idle = max(0.0, n * HOURS_PER_MONTH - hours)
        it_kwh = _dec(hours * inp.kw + idle * inp.kw * inp.idle_share)
        parts = {
            "gpu_capex_amortised": capex_month,
            "power": it_kwh * inp.electricity,
            "cooling": it_kwh * (inp.pue - 1) * inp.electricity,
            "space": inp.space * n,
            "staff": _dec(inp.staff_fte) * inp.staff_salary / 12,
        }
        month_total = sum(parts.values(), D(0))
        for k, v in parts.items():
            _add(acc, k, v)
        if hours > 0:
            training += month_total * _dec(min(load.training_h, hours) / hours)
        kwh += it_kwh * inp.pue
        monthly.append(month_total)
    return acc, training, kwh, monthly


def _first_month_extra(load: Load, total_variable: Decimal) -> Decimal:
    """The first month's share of a cost that scales with videos."""
    videos = sum(load.videos)
    return total_variable * _dec(load.videos[0] / videos) if videos > 0 else D(0)


def on_premise(load: Load, inp: Inputs, catalog: Catalog) -> Option:
    """Owned GPUs sized for the peak month."""
    n = load.fleet(inp.utilisation)
    acc, training, kwh, monthly = _owned(load, inp, n, lambda m: load.inference_h(m) + load.training_h)
    disk = catalog.storage_price("local", None)
    _storage_egress(acc, load, inp, disk.usd_per_gb_month, D(0))
    notes = [
        f"{n} × {inp.device} sized for the peak month at {inp.utilisation:.0%} utilisation, bought up front",
        f"CapEx straight-line over {inp.amortisation_years:g} years: each month bears 1/"
        f"{inp.amortisation_years * 12:g} of the purchase"
        + (
            "; the horizon is shorter, so only the amortised part is charged"
            if load.months < inp.amortisation_years * 12
            else "; beyond that the GPUs are replaced at the same price"
        ),
        f"power: rated power × busy hours + {inp.idle_share:.0%} of it for idle hours; "
        f"cooling: (PUE − 1) × that energy",
        "training runs on the same fleet: its share of the fleet's cost follows its share of busy hours",
    ]
    storage_first = _first_month_extra(load, acc["storage"])
    return Option(
        id="on_premise",
        label=f"On-premise {inp.device} fleet",
        deployment="on_premise",
        provider="onprem",
        pricing_model="capex",
        device=inp.device,
        breakdown=acc,
        capex=acc["gpu_capex_amortised"],
        training=training,
        first_month=monthly[0] + storage_first,
        energy_kwh=kwh,
        carbon_region=inp.carbon_region,
        g_co2e_per_kwh=inp.g_co2e_per_kwh,
        pue=inp.pue,
        sources=[*(f.to_json() for f in inp.figures), _catalog_source(disk, f"storage {disk.tier}")],
        notes=notes,
        fleet_gpus=n,
    )


def _rented(
    load: Load,
    inp: Inputs,
    row: DevicePrice,
    busy: Callable[[int], float],
    training_h: float,
    premium: float,
    n_committed: int | None,
) -> tuple[dict[str, Decimal], Decimal, Decimal, list[Decimal]]:
    """GPU-hours bought from ``row``: a committed fleet of ``n_committed`` around the clock, or instances kept
    up (busy ÷ utilisation) plus ``training_h`` a month billed for its hours. Returns the breakdown, training $,
    IT kWh (before PUE) and the cost per month."""
    acc: dict[str, Decimal] = {}
    price = row.usd_per_device_hour
    factor = 1 + _dec(premium)
    kwh = 0.0
    monthly: list[Decimal] = []
    for m in range(load.months):
        hours = busy(m)
        if n_committed is not None:
            kept, used = n_committed * HOURS_PER_MONTH, hours
        else:
            kept, used = hours / inp.utilisation + training_h, hours + training_h
        cost = _dec(kept) * price
        kwh += used * inp.kw + max(0.0, kept - used) * inp.kw * inp.idle_share
        _add(acc, "gpu", cost)
        if premium:
            _add(acc, "vpc_premium", cost * _dec(premium))
        monthly.append(cost * factor)
    training = _dec(training_h * load.months) * price * factor if n_committed is None else D(0)
    return acc, training, _dec(kwh), monthly


def cloud(load: Load, inp: Inputs, catalog: Catalog, row: DevicePrice) -> Option:
    """A cloud provider's GPUs under one pricing model."""
    specialist = row.provider in SPECIALISTS
    committed = row.pricing_model in COMMITTED
    n = load.fleet(inp.utilisation) if committed else None
    premium = inp.vpc_premium if specialist else 0.0
    if committed:
        # The committed fleet also runs fine-tuning: training's share of its cost follows its busy hours.
        acc, _, it_kwh, monthly = _rented(
            load, inp, row, lambda m: load.inference_h(m) + load.training_h, 0.0, premium, n
        )
        training = sum(
            (
                monthly[m] * _dec(load.training_h / (load.inference_h(m) + load.training_h))
                for m in range(load.months)
                if load.inference_h(m) + load.training_h > 0
            ),
            D(0),
        )
    else:
        acc, training, it_kwh, monthly = _rented(load, inp, row, load.inference_h, load.training_h, premium, None)
    storage = catalog.storage_price(row.provider, None)
    egress = catalog.egress_price(row.provider)
    _storage_egress(acc, load, inp, storage.usd_per_gb_month, egress.usd_per_gb)
    pue = catalog.pue_for(row.provider)
    region = _cloud_region(catalog, row)
    intensity = catalog.intensity(region)
    deployment = "specialised_cloud_vpc" if specialist else "hyperscaler_cloud"
    billing = (
        f"{n} × {inp.device} committed around the clock (sized for the peak month at {inp.utilisation:.0%})"
        if committed
        else f"instances kept up: busy GPU-hours ÷ {inp.utilisation:.0%} utilisation; fine-tuning for its hours"
    )
    notes = [billing]
    if specialist:
        notes.append(f"VPC premium {premium:.0%} on GPU spend for a private, dedicated VPC")
    if row.pricing_model == "spot":
        notes.append("spot capacity can be reclaimed: fine for batch, risky for a latency target")
    first = monthly[0] + _first_month_extra(load, acc["storage"] + acc["egress"])
    return Option(
        id=f"{deployment}:{row.provider}:{_slug(row.pricing_model)}",
        label=f"{row.provider} {inp.device} {row.pricing_model}" + (" in a VPC" if specialist else f" ({row.region})"),
        deployment=deployment,
        provider=row.provider,
        pricing_model=row.pricing_model,
        device=inp.device,
        breakdown=acc,
        capex=D(0),
        training=training,
        first_month=first,
        energy_kwh=it_kwh * pue,
        carbon_region=region,
        g_co2e_per_kwh=intensity.g_co2e_per_kwh,
        pue=pue,
        sources=[
            _catalog_source(row, f"gpu {row.provider}/{row.device}/{row.pricing_model}/{row.region}"),
            _catalog_source(storage, f"storage {row.provider}/{storage.tier}"),
            _catalog_source(egress, f"egress {row.provider}/{egress.tier}"),
            _catalog_source(intensity, f"carbon {region}"),
        ],
        notes=notes,
        fleet_gpus=n,
    )


def _cheapest_on_demand(catalog: Catalog, inp: Inputs) -> DevicePrice | None:
    """The cheapest on-demand GPU-hour of a specialist (any allowed provider when no specialist is allowed)."""
    for group in (SPECIALISTS, (*SPECIALISTS, *HYPERSCALERS)):
        rows = [r for r in _cloud_rows(catalog, inp, group) if r.pricing_model.startswith("on-demand")]
        if rows:
            return min(rows, key=lambda r: r.usd_per_device_hour)
    return None


def api(load: Load, inp: Inputs, catalog: Catalog, provider: str, model: str, usd_per_s: Decimal, src: Any) -> Option:
    """A commercial video API; fine-tuning (which the API does not offer) on on-demand specialist GPUs."""
    seconds = _dec(sum(load.videos) * load.seconds_per_video)
    acc: dict[str, Decimal] = {"api": seconds * usd_per_s}
    gpu = _cheapest_on_demand(catalog, inp)
    training = D(0)
    if load.training_h and gpu is not None:
        training = _dec(load.training_h * load.months) * gpu.usd_per_device_hour
        acc["gpu_training"] = training
    proxy = next(r for r in catalog.pue if r.provider == "aws")
    world = catalog.intensity("world")
    busy = sum(load.inference_h(m) for m in range(load.months)) + load.training_h * load.months
    first = _dec(load.videos[0] * load.seconds_per_video) * usd_per_s + (training / load.months)
    sources = [
        src if src is not None else {"what": "prices.api_usd_per_second", "kind": "assumption"},
        {"what": "energy: same GPU-seconds model, hyperscale PUE, world grid", "kind": "assumption"},
        _catalog_source(proxy, "PUE (aws row as a hyperscale stand-in)"),
        _catalog_source(world, "carbon world"),
    ]
    return Option(
        id=f"public_cloud_api:{_slug(provider)}:{_slug(model)}",
        label=f"{provider} {model} API",
        deployment="public_cloud_api",
        provider=provider,
        pricing_model="per-second",
        device="api",
        breakdown=acc,
        capex=D(0),
        training=training,
        first_month=first,
        energy_kwh=_dec(busy * inp.kw) * proxy.value,
        carbon_region="world",
        g_co2e_per_kwh=world.g_co2e_per_kwh,
        pue=proxy.value,
        sources=sources,
        notes=[
            "$/second × seconds × videos; storage and delivery of the returned files are not included",
            "energy and carbon estimated (assumption): the vendor does not publish them",
        ]
        + (["fine-tuning is not offered by the API: priced on on-demand specialist GPUs"] if training else []),
    )


def hybrid(load: Load, inp: Inputs, catalog: Catalog, ops: GpuOps) -> Option | None:
    """A private base sized for the first year's average load plus on-demand specialist GPUs above it."""
    burst = _cheapest_on_demand(catalog, inp)
    if burst is None:
        return None
    year = range(min(12, load.months))
    average = sum(load.inference_h(m) for m in year) / len(year)
    n = math.ceil(average / (HOURS_PER_MONTH * inp.utilisation) - 1e-9) if average > 0 else 0
    capacity = n * HOURS_PER_MONTH * inp.utilisation

    def base(m: int) -> float:
        return min(load.inference_h(m), capacity)

    def above(m: int) -> float:
        return load.inference_h(m) - base(m)

    notes = [
        f"base: {n} × {inp.device} sized for the first year's average load at {inp.utilisation:.0%}",
        f"above the base (growth, peaks) and all fine-tuning: on-demand {burst.provider} GPUs "
        f"(busy hours ÷ utilisation)",
    ]
    premium = inp.vpc_premium if burst.provider in SPECIALISTS else 0.0
    if premium:
        notes[1] += f" with the {premium:.0%} VPC premium"
    sources: list[dict[str, Any]] = [_catalog_source(burst, f"burst gpu {burst.provider}/{burst.pricing_model}")]
    acc: dict[str, Decimal] = {}
    if ops is not GpuOps.none:
        base_acc, _, base_kwh, base_monthly = _owned(load, inp, n, base)
        acc.update({f"base_{k}": v for k, v in base_acc.items()})
        capex = base_acc.get("gpu_capex_amortised", D(0))
        pue, region, g = inp.pue, inp.carbon_region, inp.g_co2e_per_kwh
        notes[0] = "on-premise " + notes[0] + " (in-house GPU skills exist)"
        storage = catalog.storage_price("local", None)
        egress_usd = D(0)
        base_provider = "onprem"
    else:
        reserved = [r for r in _cloud_rows(catalog, inp, SPECIALISTS) if r.pricing_model in COMMITTED]
        if not reserved:
            return None
        row = min(reserved, key=lambda r: r.usd_per_device_hour)
        base_acc, _, it_kwh, base_monthly = _rented(load, inp, row, base, 0.0, inp.vpc_premium, n)
        acc.update({f"base_{k}": v for k, v in base_acc.items()})
        capex = D(0)
        pue = catalog.pue_for(row.provider)
        region = _cloud_region(catalog, row)
        g = catalog.intensity(region).g_co2e_per_kwh
        base_kwh = it_kwh * pue
        notes[0] = f"reserved {row.provider} " + notes[0] + " in its VPC (no in-house GPU skills)"
        sources.append(_catalog_source(row, f"base gpu {row.provider}/{row.pricing_model}"))
        storage = catalog.storage_price(row.provider, None)
        egress_usd = catalog.egress_price(row.provider).usd_per_gb
        base_provider = row.provider
    burst_acc, training, burst_it, burst_monthly = _rented(load, inp, burst, above, load.training_h, premium, None)
    acc.update({f"burst_{k}": v for k, v in burst_acc.items()})
    _storage_egress(acc, load, inp, storage.usd_per_gb_month, egress_usd)
    sources.append(_catalog_source(storage, f"storage {storage.tier}"))
    burst_kwh = burst_it * catalog.pue_for(burst.provider)
    burst_g = catalog.intensity(_cloud_region(catalog, burst)).g_co2e_per_kwh
    kwh = base_kwh + burst_kwh
    co2e = (base_kwh * g + burst_kwh * burst_g) / 1000
    first = base_monthly[0] + burst_monthly[0] + _first_month_extra(load, acc["storage"] + acc["egress"])
    return Option(
        id="hybrid",
        label=f"Hybrid: private {inp.device} base + on-demand {burst.provider} above it",
        deployment="hybrid",
        provider=f"{base_provider}+{burst.provider}",
        pricing_model="base+on-demand",
        device=inp.device,
        breakdown=acc,
        capex=capex,
        training=training,
        first_month=first,
        energy_kwh=kwh,
        carbon_region=f"{region}+{_cloud_region(catalog, burst)}",
        g_co2e_per_kwh=g,
        pue=pue,
        sources=sources,
        notes=notes,
        fleet_gpus=n,
        co2e=co2e,
    )


def measured_option(load: Load, measured: Measured) -> Option:
    """This platform as it runs today, at its measured cost, energy and carbon per video."""
    videos = _dec(sum(load.videos))
    per = measured.total_usd / measured.videos
    total = per * videos
    kwh = measured.energy_kwh / measured.videos * videos
    co2 = measured.co2e_kg / measured.videos * videos
    g = co2 / kwh * 1000 if kwh > 0 else D(0)
    return Option(
        id="this_platform_measured",
        label="This platform as measured (cost records)",
        deployment="this_platform",
        provider="measured",
        pricing_model="measured",
        device="measured",
        breakdown={"measured": total},
        capex=D(0),
        training=D(0),
        first_month=per * _dec(load.videos[0]),
        energy_kwh=kwh,
        carbon_region="measured",
        g_co2e_per_kwh=g,
        pue=D(1),
        sources=[{"what": "cost, energy and CO2e per video", "kind": "measured", **measured.to_json()}],
        notes=[f"{measured.videos} videos over {measured.span_days} days; failed attempts are in the cost"],
    )


def price_options(
    scenario: Scenario, catalog: Catalog, inp: Inputs, videos: list[float], measured: Measured | None = None
) -> list[Option]:
    """Every option for a month-by-month volume ``videos`` (unsorted)."""
    load = Load(videos, scenario.seconds_per_video, inp.gpu_s_per_video_s, inp.training_h)
    options = [on_premise(load, inp, catalog)]
    options += [cloud(load, inp, catalog, row) for row in _cloud_rows(catalog, inp, (*SPECIALISTS, *HYPERSCALERS))]
    if inp.api_usd_per_second is not None:
        options.append(api(load, inp, catalog, "scenario", "prices.api_usd_per_second", inp.api_usd_per_second, None))
    else:
        for row in catalog.video_api:
            src = _catalog_source(row, f"video_api {row.provider}/{row.model}")
            options.append(api(load, inp, catalog, row.provider, row.model, row.usd_per_second, src))
    mixed = hybrid(load, inp, catalog, scenario.gpu_ops_experience)
    if mixed is not None:
        options.append(mixed)
    if measured is not None:
        options.append(measured_option(load, measured))
    return options


CLOUD = ("specialised_cloud_vpc", "hyperscaler_cloud")


def _steady_monthly(scenario: Scenario, catalog: Catalog, inp: Inputs, volume: float) -> dict[str, Decimal]:
    """Monthly cost at a steady ``volume``: on-premise, the cheapest API and the cheapest cloud option."""
    options = price_options(scenario, catalog, inp, [float(volume)])
    best: dict[str, Decimal] = {}
    for o in options:
        key = "api" if o.deployment == "public_cloud_api" else "cloud" if o.deployment in CLOUD else o.deployment
        if key not in best or o.total < best[key]:
            best[key] = o.total
    return best


def _break_even_volume(scenario: Scenario, catalog: Catalog, inp: Inputs, other: str) -> int | None:
    """The smallest steady monthly volume at which on-premise costs no more than ``other`` (None within 1e9)."""

    def cheaper(v: int) -> bool:
        best = _steady_monthly(scenario, catalog, inp, v)
        return other in best and best["on_premise"] <= best[other]

    low, v = 0, 1
    while v <= MAX_VOLUME:
        if cheaper(v):
            break
        low, v = v, max(v + 1, int(v * 1.25))
    else:
        return None
    while v - low > 1:  # the crossing lies in (low, v]
        mid = (low + v) // 2
        if cheaper(mid):
            v = mid
        else:
            low = mid
    return v


def break_even(scenario: Scenario, catalog: Catalog, inp: Inputs, fleet: int) -> dict[str, Any]:
    """(a) the utilisation at which an owned GPU's cost per busy hour equals the cheapest on-demand cloud
    GPU-hour; (b) the steady monthly volumes at which on-premise equals the cheapest API and cloud option."""
    n = max(1, fleet)
    fixed = (
        inp.capex_per_gpu / _dec(inp.amortisation_years * 8760)
        + inp.space / _dec(HOURS_PER_MONTH)
        + _dec(inp.staff_fte) * inp.staff_salary / _dec(n * 8760)
        + _dec(inp.kw * inp.idle_share) * inp.pue * inp.electricity
    )
    variable = _dec(inp.kw * (1 - inp.idle_share)) * inp.pue * inp.electricity
    gpu = _cheapest_on_demand_any(catalog, inp)
    util: dict[str, Any] = {
        "formula": "u* = F / (C − V); F = capex/(amortisation h) + space/730 h + staff/(GPUs × 8760 h) + idle "
        "power × PUE × $/kWh, per GPU wall-clock hour; V = busy − idle power × PUE × $/kWh per busy hour; "
        "C = the cheapest on-demand cloud GPU-hour (with the VPC premium for specialists), taken as billed "
        "for busy hours only (the best case for cloud)",
        "fleet_gpus": n,
        "fixed_usd_per_gpu_hour": _sig(fixed, 6),
        "variable_usd_per_busy_hour": _sig(variable, 6),
    }
    if gpu is not None:
        row, price = gpu
        util.update(
            cloud_option=f"{row.provider} {row.device} {row.pricing_model}",
            cloud_usd_per_gpu_hour=_sig(price, 6),
            source=row.source,
            as_of=row.as_of,
        )
        u = fixed / (price - variable) if price > variable else None
        util["utilisation"] = _sig(u, 4) if u is not None and u <= 1 else None
        util["verdict"] = (
            f"owning pays off above {float(u):.1%} utilisation"
            if u is not None and u <= 1
            else "never: an owned GPU costs more per busy hour even at 100 % utilisation"
        )
    volume: dict[str, Any] = {
        "formula": "smallest steady monthly volume V (videos, no growth) with monthly on-premise cost(V) ≤ "
        f"the cheapest option's monthly cost(V); searched up to {MAX_VOLUME:.0e}",
    }
    for key, name in (("api", "vs_cheapest_api"), ("cloud", "vs_cheapest_cloud")):
        v = _break_even_volume(scenario, catalog, inp, key)
        volume[name] = v if v is not None else "never"
    return {"utilisation": util, "volume": volume}


def _cheapest_on_demand_any(catalog: Catalog, inp: Inputs) -> tuple[DevicePrice, Decimal] | None:
    rows = [
        r for r in _cloud_rows(catalog, inp, (*SPECIALISTS, *HYPERSCALERS)) if r.pricing_model.startswith("on-demand")
    ]
    priced = [
        (r, r.usd_per_device_hour * (1 + _dec(inp.vpc_premium if r.provider in SPECIALISTS else 0))) for r in rows
    ]
    return min(priced, key=lambda p: p[1]) if priced else None


@dataclass
class TcoResult:
    """The priced options (cheapest first), break-even figures and E-TCO of one scenario."""

    scenario: Scenario
    catalog: Catalog
    inputs: Inputs
    videos: list[float]
    options: list[Option]
    break_even: dict[str, Any]
    measured: Measured | None = None

    @property
    def total_videos(self) -> float:
        """Videos over the horizon."""
        return sum(self.videos)

    def to_json(self) -> dict[str, Any]:
        """Exactly what ``reelfoundry plan tco --json`` prints."""
        months = len(self.videos)
        options = [o.to_json(self.total_videos, months) for o in self.options]
        source = "measured" if self.measured is not None else "assumption"
        return {
            "scenario": self.scenario.name,
            "horizon_years": self.scenario.horizon_years,
            "months": months,
            "device": self.inputs.device,
            "catalog_version": self.catalog.version,
            "volume": {
                "kind": source,
                "first_month": round(self.videos[0], 2),
                "last_month": round(self.videos[-1], 2),
                "total_videos": round(self.total_videos, 2),
                "seconds_per_video": round(self.scenario.seconds_per_video, 3),
                "growth_per_year": self.scenario.growth_per_year,
                "videos_by_month": [round(v, 2) for v in self.videos],
            },
            "workload": {
                "gpu_seconds_per_video_second": self.inputs.gpu_s_per_video_s,
                "inference_gpu_hours": round(
                    self.total_videos * self.scenario.seconds_per_video * self.inputs.gpu_s_per_video_s / 3600, 2
                ),
                "training_gpu_hours": round(self.inputs.training_h * months, 2),
            },
            "cheapest": options[0]["id"] if options else None,
            "options": options,
            "break_even": self.break_even,
            "etco": [
                {
                    "id": o["id"],
                    "energy_kwh_per_month": round(o["energy_kwh"] / months, 3),
                    "co2e_kg_per_month": round(o["co2e_kg"] / months, 3),
                    "energy_kwh_per_video": o["energy_kwh_per_video"],
                    "co2e_kg_per_video": o["co2e_kg_per_video"],
                    "energy_kwh": o["energy_kwh"],
                    "co2e_kg": o["co2e_kg"],
                    "carbon_region": opt.carbon_region,
                    "g_co2e_per_kwh": _sig(opt.co2e_kg / opt.energy_kwh * 1000, 6) if opt.energy_kwh else 0.0,
                    "pue": float(opt.pue),
                }
                for o, opt in zip(options, self.options, strict=True)
            ],
            "assumptions": [f.to_json() for f in self.inputs.figures],
            "measured": self.measured.to_json() if self.measured is not None else None,
        }


def compute(scenario: Scenario, catalog: Catalog | None = None, measured: Measured | None = None) -> TcoResult:
    """Price every option for ``scenario`` (volume and seconds per video from ``measured`` when given)."""
    catalog = catalog or load_catalog()
    if measured is not None:
        scenario = measured.apply(scenario)
    inp = resolve(scenario, catalog)
    if measured is not None:
        inp.figures[:0] = [
            Figure("volume_per_month", round(measured.videos_per_month, 2), "measured", "cost records over 30 days"),
            Figure("seconds_per_video", round(measured.seconds_per_video, 3), "measured", "video seconds per video"),
        ]
    videos = [scenario.volume_in_month(m) for m in range(scenario.months)]
    if videos[-1] > MAX_MONTHLY_VOLUME or videos[0] > MAX_MONTHLY_VOLUME:
        raise InvalidParameter(
            "growth_per_year",
            f"growth_per_year {scenario.growth_per_year:g} over {scenario.horizon_years:g} years reaches "
            f"{max(videos):.3g} videos a month; TCO prices up to {MAX_MONTHLY_VOLUME:.0e}",
        )
    options = sorted(price_options(scenario, catalog, inp, videos, measured), key=lambda o: (o.total, o.id))
    fleet = next(o.fleet_gpus or 0 for o in options if o.id == "on_premise")
    return TcoResult(scenario, catalog, inp, videos, options, break_even(scenario, catalog, inp, fleet), measured)


def best_by_deployment(result: TcoResult) -> dict[str, Option]:
    """The cheapest option per deployment name (``options`` are sorted cheapest first)."""
    best: dict[str, Option] = {}
    for option in result.options:
        best.setdefault(option.deployment, option)
    return best


def cost_volume_chart(result_or_scenario: TcoResult | Scenario) -> bytes:
    """PNG of monthly cost against monthly volume (see :func:`reelfoundry.planning.charts.cost_volume_chart`)."""
    from reelfoundry.planning.charts import cost_volume_chart as draw

    return draw(result_or_scenario)
