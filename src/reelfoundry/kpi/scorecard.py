"""The KPI scorecard: the blueprint's 2025 figures computed from the database over a window.

``scorecard(session, tenant_id, start, end, now)`` only reads: the same inputs give the same answer. The window
is ``[start, end)`` (either may be None: unbounded); each KPI says which time it windows on (a job's end for
money, energy and device time, its start for queue wait, a review's decision for approval rate, a campaign's
or card's first event for the velocity figures). Events after ``end`` do not count, so a past window reads
the same later. ``tenant_id`` None is every tenant (the operator's view).

Percentiles are nearest-rank (the value at rank ⌈p·n/100⌉ of the sorted sample, never interpolated); medians are
the middle value (the mean of the two middle values for an even count).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from reelfoundry.finops.meter import KWH, USD
from reelfoundry.schema import ReviewState
from reelfoundry.schema.dam import NO_TRAINING
from reelfoundry.schema.finetune import FinetuneState
from reelfoundry.schema.kpi import (
    ApprovalRate,
    CampaignOutcomeCost,
    CampaignVelocity,
    CostPerInference,
    CostPerOutcome,
    DataAssetLeverage,
    DeviceUtilization,
    GpuUtilization,
    InnovationVelocity,
    KpiFigure,
    ModelAgility,
    ModelAgilityEntry,
    PerVideo,
    QueueWait,
    Scorecard,
    Trend,
    TrendPoint,
    WaitStats,
)
from reelfoundry.store import outcomes
from reelfoundry.store.tables import ApiKeyRow, AssetRow, CostRecordRow, FinetuneRow, JobRow, ModelCardRow

#: Ratios keep four places (0.7500 = 75.00 %).
RATIO = Decimal("0.0001")
SECONDS = Decimal("0.001")
HOURS = Decimal("0.001")
#: Days a trend keeps at most (the newest ones with data): a window of years draws one year.
MAX_TREND_DAYS = 366
#: Campaigns and models listed at most in a figure's detail (the figure itself counts them all).
MAX_LISTED = 200
_APPROVED = (ReviewState.approved.value, ReviewState.published.value)
#: Cost records of jobs that ran on a vendor's API: no local device, so no device time.
_VENDOR_DEVICE = "api"
_F = TypeVar("_F", bound=KpiFigure)
#: Rows fetched at a time while the cost records are summed.
_BATCH = 1000


def scorecard(
    session: Session, tenant_id: str | None, start: datetime | None, end: datetime | None, now: datetime
) -> Scorecard:
    """The scorecard of ``tenant_id`` (None: every tenant) over ``[start, end)``, as of ``now``."""
    records = _records(session, tenant_id, start, end)
    generate = [r for r in records if r.kind == "generate"]
    waits = _waits(session, tenant_id, start, end)
    reviews = _reviews(session, tenant_id, start, end)
    return Scorecard(
        tenant_id=tenant_id,
        start=start,
        end=end,
        generated_at=now,
        gpu_utilization=gpu_utilization(records),
        queue_wait_s=queue_wait(waits),
        cost_per_inference_usd=cost_per_inference(generate),
        innovation_velocity=innovation_velocity(session, tenant_id, start, end),
        model_agility=model_agility(session, tenant_id, start, end),
        data_asset_leverage=data_asset_leverage(session, tenant_id, end, now),
        cost_per_business_outcome_usd=cost_per_business_outcome(session, tenant_id, start, end, records),
        approval_rate=approval_rate(reviews),
        energy_kwh_per_video=_per_video(generate, "energy_kwh", "kWh", KWH),
        co2e_kg_per_video=_per_video(generate, "co2e_kg", "kg CO2e", KWH),
        trends=trends(records, waits, reviews),
    )


def daily_trends(session: Session, tenant_id: str | None, start: datetime | None, end: datetime | None) -> list[Trend]:
    """The daily series alone (``scorecard(...).trends``), for a chart: none of the other figures' queries."""
    return trends(
        _records(session, tenant_id, start, end),
        _waits(session, tenant_id, start, end),
        _reviews(session, tenant_id, start, end),
    )


# -- the rows read ------------------------------------------------------------------------------------------------


@dataclass
class _Record:
    """The cost records (ended jobs) of one UTC day, job kind, state, campaign and device, summed: a tenant's
    history reads as a few of these per day, never one object per job."""

    day: str
    kind: str
    state: str
    campaign: str | None
    device: str | None
    jobs: int = 0
    #: Device-seconds busy and idle, each weighted by its job's device share.
    busy: Decimal = Decimal(0)
    idle: Decimal = Decimal(0)
    total_usd: Decimal = Decimal(0)
    energy_kwh: Decimal = Decimal(0)
    co2e_kg: Decimal = Decimal(0)


@dataclass
class _Wait:
    """The queue waits (seconds) of the jobs of one kind that started on one UTC day: percentiles need each one,
    so only the number is kept per job."""

    day: str
    kind: str
    seconds: list[float]


@dataclass(frozen=True)
class _Review:
    """The review decisions of one UTC day: approved (published included) and rejected, counted."""

    day: str
    approved: int
    rejected: int

    @property
    def decided(self) -> int:
        return self.approved + self.rejected


def _window(column: Any, start: datetime | None, end: datetime | None) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if start is not None:
        conditions.append(column >= start)
    if end is not None:
        conditions.append(column < end)
    return conditions


def _tenant(column: Any, tenant_id: str | None) -> list[ColumnElement[bool]]:
    return [] if tenant_id is None else [column == tenant_id]


def _records(session: Session, tenant_id: str | None, start: datetime | None, end: datetime | None) -> list[_Record]:
    stmt = (
        select(
            CostRecordRow.created_at,
            JobRow.kind,
            CostRecordRow.state,
            CostRecordRow.campaign,
            CostRecordRow.device,
            CostRecordRow.device_share,
            CostRecordRow.device_seconds,
            CostRecordRow.idle_seconds,
            CostRecordRow.total_usd,
            CostRecordRow.energy_kwh,
            CostRecordRow.co2e_kg,
        )
        .join(JobRow, JobRow.id == CostRecordRow.job_id)
        .where(*_tenant(CostRecordRow.tenant_id, tenant_id), *_window(CostRecordRow.created_at, start, end))
        .execution_options(yield_per=_BATCH)
    )
    sums: dict[tuple[str, str, str, str | None, str | None], _Record] = {}
    for at, kind, state, campaign, device, share, device_s, idle_s, usd, kwh, co2e in session.execute(stmt):
        key = (at.date().isoformat(), kind, state, campaign, device)
        r = sums.get(key)
        if r is None:
            r = sums[key] = _Record(*key)
        weight = share if share is not None else Decimal(1)
        r.jobs += 1
        r.busy += Decimal(str(device_s or 0.0)) * weight
        r.idle += Decimal(str(idle_s or 0.0)) * weight
        r.total_usd += usd
        r.energy_kwh += kwh
        r.co2e_kg += co2e
    return list(sums.values())


def _waits(session: Session, tenant_id: str | None, start: datetime | None, end: datetime | None) -> list[_Wait]:
    stmt = select(JobRow.kind, JobRow.created_at, JobRow.started_at).where(
        JobRow.started_at.is_not(None), *_tenant(JobRow.tenant_id, tenant_id), *_window(JobRow.started_at, start, end)
    )
    days: dict[tuple[str, str], _Wait] = {}
    for kind, created, started in session.execute(stmt.execution_options(yield_per=_BATCH)):
        if started is not None:
            key = (started.date().isoformat(), kind)
            if key not in days:
                days[key] = _Wait(*key, seconds=[])
            days[key].seconds.append(max(0.0, (started - created).total_seconds()))
    return list(days.values())


def _reviews(session: Session, tenant_id: str | None, start: datetime | None, end: datetime | None) -> list[_Review]:
    decided = (*_APPROVED, ReviewState.rejected.value)
    stmt = select(AssetRow.reviewed_at, AssetRow.review_state).where(
        AssetRow.reviewed_at.is_not(None),
        AssetRow.review_state.in_(decided),
        *_tenant(AssetRow.tenant_id, tenant_id),
        *_window(AssetRow.reviewed_at, start, end),
    )
    days: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for at, state in session.execute(stmt.execution_options(yield_per=_BATCH)):
        if at is not None:
            days[at.date().isoformat()][0 if state in _APPROVED else 1] += 1
    return [_Review(day, approved, rejected) for day, (approved, rejected) in days.items()]


# -- arithmetic -----------------------------------------------------------------------------------------------------


def nearest_rank(values: list[float], percent: int) -> float | None:
    """The nearest-rank percentile: the value at rank ⌈percent·n/100⌉ (1-based) of the sorted values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-percent * len(ordered) // 100))
    return ordered[rank - 1]


def _dec(value: float | None, places: Decimal) -> Decimal | None:
    return None if value is None else Decimal(str(value)).quantize(places)


def _ratio(part: Decimal, whole: Decimal) -> Decimal | None:
    return (part / whole).quantize(RATIO) if whole else None


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def _hours(a: datetime, b: datetime | None) -> float | None:
    return None if b is None else round((b - a).total_seconds() / 3600, 3)


def _unavailable(cls: type[_F], unit: str, definition: str, reason: str, **extra: Any) -> _F:
    return cls(available=False, value=None, unit=unit, n=0, definition=definition, reason=reason, **extra)


# -- the KPIs -------------------------------------------------------------------------------------------------------


def _busy_idle(records: Iterable[_Record]) -> tuple[Decimal, Decimal]:
    busy = sum((r.busy for r in records), Decimal(0))
    idle = sum((r.idle for r in records), Decimal(0))
    return busy, idle


def _jobs(records: Iterable[_Record], state: str | None = None) -> int:
    return sum(r.jobs for r in records if state is None or r.state == state)


def _on_device(records: Iterable[_Record]) -> list[_Record]:
    return [r for r in records if r.device is not None and r.device != _VENDOR_DEVICE]


def gpu_utilization(records: list[_Record]) -> GpuUtilization:
    """Busy ÷ (busy + idle) device-seconds of the jobs that ended in the window, weighted by device share."""
    local = _on_device(records)
    by_device: dict[str, list[_Record]] = defaultdict(list)
    for r in local:
        by_device[str(r.device)].append(r)
    classes = ", ".join(sorted(by_device)) or "none"
    definition = (
        "Busy ÷ (busy + idle) device-seconds of the jobs that ended in the window, each weighted by its device "
        "share (a MIG slice or fraction counts as that fraction of a device): busy is the time a worker slot ran "
        "the job, idle the time the slot waited for work before it (charged to the job that followed, as the "
        "cost records charge it; idle after the last job is not counted until a job follows). Jobs on a vendor's "
        f"API hold no local device and are left out. Fine-tunes included. Device classes: {classes}."
    )
    busy, idle = _busy_idle(local)
    devices = []
    for name in sorted(by_device):
        b, i = _busy_idle(by_device[name])
        devices.append(
            DeviceUtilization(
                device=name,
                jobs=_jobs(by_device[name]),
                busy_device_s=float(b),
                idle_device_s=float(i),
                utilization=_ratio(b, b + i),
            )
        )
    if not busy + idle:
        reason = "no job ended on a local device in the window" if not local else "no device time was recorded"
        return _unavailable(GpuUtilization, "ratio", definition, reason)
    return GpuUtilization(
        available=True,
        value=_ratio(busy, busy + idle),
        unit="ratio",
        n=_jobs(local),
        definition=definition,
        busy_device_s=float(busy),
        idle_device_s=float(idle),
        devices=devices,
    )


def _wait_stats(seconds: list[float]) -> WaitStats:
    return WaitStats(n=len(seconds), p50_s=nearest_rank(seconds, 50), p95_s=nearest_rank(seconds, 95))


def queue_wait(waits: list[_Wait]) -> QueueWait:
    """p50 / p95 of started − created of the generation jobs that started in the window (fine-tunes apart)."""
    definition = (
        "started_at − created_at of the generation jobs that started in the window (a retried job: to its last "
        "start), in seconds; p50 and p95 are nearest-rank percentiles (the value at rank ⌈p·n/100⌉ of the sorted "
        "waits). value is p50. Fine-tune jobs are reported apart in finetune."
    )
    generation = [x for w in waits if w.kind == "generate" for x in w.seconds]
    finetune = _wait_stats([x for w in waits if w.kind != "generate" for x in w.seconds])
    if not generation:
        return _unavailable(QueueWait, "s", definition, "no generation job started in the window", finetune=finetune)
    stats = _wait_stats(generation)
    return QueueWait(
        available=True,
        value=_dec(stats.p50_s, SECONDS),
        unit="s",
        n=stats.n,
        definition=definition,
        p50_s=stats.p50_s,
        p95_s=stats.p95_s,
        finetune=finetune,
    )


def cost_per_inference(generate: list[_Record]) -> CostPerInference:
    """Spend of the generation jobs that ended in the window ÷ those jobs; and ÷ their succeeded videos."""
    definition = (
        "total_usd of the cost records of the generation jobs that ended in the window (succeeded, failed and "
        "cancelled: every attempt's device time is paid for) ÷ the number of those jobs. per_succeeded_video_usd "
        "divides the same spend by the succeeded videos only."
    )
    if not generate:
        return _unavailable(CostPerInference, "USD", definition, "no generation job ended in the window")
    total = sum((r.total_usd for r in generate), Decimal(0))
    jobs, succeeded = _jobs(generate), _jobs(generate, "succeeded")
    return CostPerInference(
        available=True,
        value=(total / jobs).quantize(USD),
        unit="USD",
        n=jobs,
        definition=definition,
        jobs=jobs,
        succeeded=succeeded,
        total_usd=total,
        per_succeeded_video_usd=(total / succeeded).quantize(USD) if succeeded else None,
    )


def _per_video(generate: list[_Record], field: str, unit: str, places: Decimal) -> PerVideo:
    what = "energy_kwh (facility energy: device energy × PUE)" if field == "energy_kwh" else "co2e_kg"
    definition = (
        f"Σ {what} of the cost records of the generation jobs that ended in the window (failed attempts "
        "included) ÷ the succeeded videos among them."
    )
    videos = _jobs(generate, "succeeded")
    if not videos:
        return _unavailable(PerVideo, unit, definition, "no video was generated in the window")
    total = sum((getattr(r, field) for r in generate), Decimal(0))
    return PerVideo(
        available=True,
        value=(total / videos).quantize(places),
        unit=unit,
        n=videos,
        definition=definition,
        total=total,
        videos=videos,
    )


def approval_rate(reviews: list[_Review]) -> ApprovalRate:
    """Approved (incl. published) ÷ decided, of the reviews decided in the window."""
    definition = (
        "Assets approved (published ones included) ÷ assets decided (approved + published + rejected), of the "
        "review decisions made in the window (assets.reviewed_at)."
    )
    if not reviews:
        return _unavailable(ApprovalRate, "ratio", definition, "no review was decided in the window")
    approved, decided = sum(r.approved for r in reviews), sum(r.decided for r in reviews)
    return ApprovalRate(
        available=True,
        value=_ratio(Decimal(approved), Decimal(decided)),
        unit="ratio",
        n=decided,
        definition=definition,
        approved=approved,
        rejected=decided - approved,
    )


def innovation_velocity(
    session: Session, tenant_id: str | None, start: datetime | None, end: datetime | None
) -> InnovationVelocity:
    """Per campaign whose first job was submitted in the window: first job → first published asset."""
    definition = (
        "For each campaign (jobs.campaign) whose first generation job was submitted in the window: hours from "
        "that job's created_at to the first published_at of an asset of the same campaign (at or after it, "
        "before the window's end). value is the median over published campaigns; the others are pending."
    )
    first = (
        select(JobRow.tenant_id, JobRow.campaign, func.min(JobRow.created_at).label("first_at"))
        .where(JobRow.campaign.is_not(None), JobRow.kind == "generate", *_tenant(JobRow.tenant_id, tenant_id))
        .group_by(JobRow.tenant_id, JobRow.campaign)
        .subquery()
    )
    published = and_(
        AssetRow.tenant_id == first.c.tenant_id,
        AssetRow.campaign == first.c.campaign,
        AssetRow.published_at.is_not(None),
        AssetRow.published_at >= first.c.first_at,
        *_window(AssetRow.published_at, None, end),
    )
    stmt = (
        select(first.c.tenant_id, first.c.campaign, first.c.first_at, func.min(AssetRow.published_at))
        .select_from(first)
        .outerjoin(AssetRow, published)
        .where(*_window(first.c.first_at, start, end))
        .group_by(first.c.tenant_id, first.c.campaign, first.c.first_at)
        .order_by(first.c.first_at, first.c.tenant_id, first.c.campaign)
    )
    campaigns = [
        CampaignVelocity(
            tenant_id=tenant, campaign=name, first_job_at=at, first_published_at=pub, hours=_hours(at, pub)
        )
        for tenant, name, at, pub in session.execute(stmt)
    ]
    hours = [c.hours for c in campaigns if c.hours is not None]
    pending = len(campaigns) - len(hours)
    if not hours:
        reason = "no campaign started in the window" if not campaigns else "no campaign has published an asset yet"
        return _unavailable(
            InnovationVelocity, "h", definition, reason, pending=pending, campaigns=campaigns[:MAX_LISTED]
        )
    return InnovationVelocity(
        available=True,
        value=_dec(_median(hours), HOURS),
        unit="h",
        n=len(hours),
        definition=definition,
        published=len(hours),
        pending=pending,
        campaigns=campaigns[:MAX_LISTED],
    )


def model_agility(
    session: Session, tenant_id: str | None, start: datetime | None, end: datetime | None
) -> ModelAgility:
    """Per card added over the API and registered in the window: registered → first production job."""
    definition = (
        "For each model card added over the API and registered in the window (a tenant sees the cards its keys "
        "added): hours from registration to its first production job, the first generation job of the model "
        "submitted after its approval (as reelfoundry.store.models.agility finds it), before the window's end. "
        "value is the median over cards that have one; the others are pending."
    )
    job_after_approval = and_(
        JobRow.model == ModelCardRow.id,
        JobRow.kind == "generate",
        ModelCardRow.approved_at.is_not(None),
        JobRow.created_at >= ModelCardRow.approved_at,
        *_window(JobRow.created_at, None, end),
    )
    stmt = (
        select(
            ModelCardRow.id,
            ModelCardRow.created_at,
            ModelCardRow.approved_at,
            ModelCardRow.first_job_at,
            func.min(JobRow.created_at),
        )
        .outerjoin(JobRow, job_after_approval)
        .where(*_window(ModelCardRow.created_at, start, end))
        .group_by(ModelCardRow.id, ModelCardRow.created_at, ModelCardRow.approved_at, ModelCardRow.first_job_at)
        .order_by(ModelCardRow.created_at, ModelCardRow.id)
    )
    if tenant_id is not None:
        stmt = stmt.join(ApiKeyRow, ApiKeyRow.id == ModelCardRow.created_by).where(ApiKeyRow.tenant_id == tenant_id)
    entries = []
    for model, registered, approved_at, stored_first, found_first in session.execute(stmt):
        approved = approved_at if approved_at is not None and (end is None or approved_at < end) else None
        # The stored first job is the one agility() found; a card not yet asked about has it found here.
        first = stored_first if stored_first is not None and (end is None or stored_first < end) else found_first
        entries.append(
            ModelAgilityEntry(
                model=model,
                registered_at=registered,
                approved_at=approved,
                first_job_at=first,
                registered_to_approved_h=_hours(registered, approved),
                registered_to_first_job_h=_hours(registered, first),
            )
        )
    hours = [e.registered_to_first_job_h for e in entries if e.registered_to_first_job_h is not None]
    pending = len(entries) - len(hours)
    if not hours:
        reason = (
            "no model card was added over the API in the window"
            if not entries
            else "no card registered in the window has run a production job yet"
        )
        return _unavailable(ModelAgility, "h", definition, reason, pending=pending, models=entries[:MAX_LISTED])
    return ModelAgility(
        available=True,
        value=_dec(_median(hours), HOURS),
        unit="h",
        n=len(hours),
        definition=definition,
        pending=pending,
        models=entries[:MAX_LISTED],
    )


def training_eligible(session: Session, tenant_id: str | None, now: datetime) -> set[str]:
    """Ids of the tenant's assets (every tenant's with None) that training may read at ``now``: the rule of
    ``store.assets.training_assets`` over the whole tenant instead of one collection (approved or published,
    rights not expired, no ``no-training`` restriction)."""
    stmt = select(AssetRow.id, AssetRow.usage_restrictions).where(
        AssetRow.review_state.in_(_APPROVED),
        or_(AssetRow.rights_expires_at.is_(None), AssetRow.rights_expires_at > now),
        *_tenant(AssetRow.tenant_id, tenant_id),
    )
    # The restriction lives in a JSON list: checked here, the same way on both databases.
    return {asset_id for asset_id, restrictions in session.execute(stmt) if NO_TRAINING not in (restrictions or [])}


def data_asset_leverage(
    session: Session, tenant_id: str | None, end: datetime | None, now: datetime
) -> DataAssetLeverage:
    """Share of the training-eligible assets (as of ``now``) that a fine-tune which succeeded before ``end`` used."""
    definition = (
        "Of the tenant's brand-approved, training-allowed assets as of now (review approved or published, rights "
        "not expired, no no-training restriction: the rule fine-tunes apply), the share that at least one "
        "succeeded fine-tune trained on (finetunes.assets_used), counting fine-tunes that finished before the "
        "window's end."
    )
    eligible = training_eligible(session, tenant_id, now)
    if not eligible:
        return _unavailable(
            DataAssetLeverage,
            "ratio",
            definition,
            "no brand-approved, training-allowed assets (approved or published, rights not expired, training not "
            "restricted)",
        )
    stmt = select(FinetuneRow.assets_used).where(
        FinetuneRow.state == FinetuneState.succeeded.value,
        *_tenant(FinetuneRow.tenant_id, tenant_id),
        *_window(FinetuneRow.finished_at, None, end),
    )
    used: set[str] = set()
    for assets_used in session.scalars(stmt):
        used.update(a for a in (assets_used or []) if isinstance(a, str))
    hit = len(used & eligible)
    return DataAssetLeverage(
        available=True,
        value=_ratio(Decimal(hit), Decimal(len(eligible))),
        unit="ratio",
        n=len(eligible),
        definition=definition,
        eligible=len(eligible),
        used=hit,
    )


def cost_per_business_outcome(
    session: Session, tenant_id: str | None, start: datetime | None, end: datetime | None, records: list[_Record]
) -> CostPerOutcome:
    """Infrastructure cost of the window ÷ the conversions of the outcomes posted for it; per campaign too."""
    definition = (
        "Σ total_usd of every cost record that ended in the window (generation and fine-tune jobs: the "
        "infrastructure cost) ÷ Σ conversions of the outcomes posted with POST /v1/outcomes whose period ends "
        "in the window. Per campaign: that campaign's cost records ÷ its outcomes' conversions."
    )
    posted = outcomes.totals(session, tenant_id, start, end)
    cost = sum((r.total_usd for r in records), Decimal(0))
    if not posted.records:
        return _unavailable(CostPerOutcome, "USD", definition, "no outcomes posted", cost_usd=cost)
    by_campaign = outcomes.totals_by_campaign(session, tenant_id, start, end)
    spend: dict[str, Decimal] = defaultdict(Decimal)
    for r in records:
        spend[r.campaign or outcomes.NO_CAMPAIGN] += r.total_usd
    campaigns = []
    for name in sorted(set(spend) | set(by_campaign))[:MAX_LISTED]:
        conversions = by_campaign[name].conversions if name in by_campaign else 0
        campaigns.append(
            CampaignOutcomeCost(
                campaign=name or None,
                cost_usd=spend.get(name, Decimal(0)),
                conversions=conversions,
                cost_per_conversion_usd=(spend.get(name, Decimal(0)) / conversions).quantize(USD)
                if conversions
                else None,
            )
        )
    if not posted.conversions:
        return _unavailable(
            CostPerOutcome,
            "USD",
            definition,
            "the outcomes posted for the window report no conversions",
            cost_usd=cost,
            campaigns=campaigns,
        )
    return CostPerOutcome(
        available=True,
        value=(cost / posted.conversions).quantize(USD),
        unit="USD",
        n=posted.conversions,
        definition=definition,
        cost_usd=cost,
        conversions=posted.conversions,
        campaigns=campaigns,
    )


# -- trends ---------------------------------------------------------------------------------------------------------


def _series(name: str, unit: str, points: dict[str, tuple[Decimal | None, int]]) -> Trend:
    days = sorted(points)[-MAX_TREND_DAYS:]
    return Trend(name=name, unit=unit, points=[TrendPoint(day=d, value=points[d][0], n=points[d][1]) for d in days])


def trends(records: list[_Record], waits: list[_Wait], reviews: list[_Review]) -> list[Trend]:
    """Daily series (UTC days with data, the newest ``MAX_TREND_DAYS``) of the figures the dashboard charts."""
    by_day: dict[str, list[_Record]] = defaultdict(list)
    for r in records:
        by_day[r.day].append(r)
    util: dict[str, tuple[Decimal | None, int]] = {}
    cost: dict[str, tuple[Decimal | None, int]] = {}
    energy: dict[str, tuple[Decimal | None, int]] = {}
    for day, rows in by_day.items():
        local = _on_device(rows)
        busy, idle = _busy_idle(local)
        if busy + idle:
            util[day] = (_ratio(busy, busy + idle), _jobs(local))
        generate = [r for r in rows if r.kind == "generate"]
        if generate:
            jobs = _jobs(generate)
            cost[day] = ((sum((r.total_usd for r in generate), Decimal(0)) / jobs).quantize(USD), jobs)
            videos = _jobs(generate, "succeeded")
            if videos:
                energy[day] = ((sum((r.energy_kwh for r in generate), Decimal(0)) / videos).quantize(KWH), videos)
    wait_days = {w.day: w.seconds for w in waits if w.kind == "generate"}
    p50 = {d: (_dec(nearest_rank(v, 50), SECONDS), len(v)) for d, v in wait_days.items()}
    p95 = {d: (_dec(nearest_rank(v, 95), SECONDS), len(v)) for d, v in wait_days.items()}
    approval = {rv.day: (_ratio(Decimal(rv.approved), Decimal(rv.decided)), rv.decided) for rv in reviews}
    return [
        _series("gpu_utilization", "ratio", util),
        _series("queue_wait_p50_s", "s", p50),
        _series("queue_wait_p95_s", "s", p95),
        _series("cost_per_inference_usd", "USD", cost),
        _series("approval_rate", "ratio", approval),
        _series("energy_kwh_per_video", "kWh", energy),
    ]
