"""Cost records: written once when a job ends, in the transaction that ends it; egress added as content is served."""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from reelfoundry.finops.meter import Rates, Usage, VendorCharge, egress_usd, price, tiered_storage_usd
from reelfoundry.ids import new_id
from reelfoundry.schema import CostRecord
from reelfoundry.store.tables import AssetRow, CostRecordRow, JobRow, utcnow

log = logging.getLogger(__name__)


def record_final(
    session: Session, job: JobRow, asset: AssetRow | None = None, vendor: VendorCharge | None = None
) -> CostRecordRow:
    """The job's one CostRecord, priced from its usage and the rates it ran at (made once; later calls return it).

    ``vendor``: the job ran on a vendor's API, which charged this; that charge is its compute part, and the
    record names the vendor and its region as where it ran (storage and egress stay this platform's).
    """
    existing = session.scalar(select(CostRecordRow).where(CostRecordRow.job_id == job.id))
    if existing is not None:
        return existing
    rates = Rates.from_json(job.meter) if job.meter else None
    stored = (asset.bytes if asset is not None else 0) if job.state == "succeeded" else 0
    usage = Usage(
        device_seconds=job.device_seconds or 0.0,
        idle_seconds=job.idle_seconds or 0.0,
        energy_j=job.energy_j or 0.0,
        energy_method=job.energy_method or "none",
        stored_bytes=stored,
        video_seconds=(asset.duration_s or 0.0) if asset is not None else 0.0,
        vendor_usd=vendor.usd if vendor is not None else Decimal(0),
    )
    figures = price(usage, rates)
    # Where it ran and at what rates (absent for a job that never ran: it costs nothing).
    rated = (
        {
            "catalog_version": rates.catalog_version,
            "provider": rates.provider,
            "region": rates.region,
            "pricing_model": rates.pricing_model,
            "device": rates.device,
            "device_share": rates.device_share,
            "usd_per_device_hour": rates.usd_per_device_hour,
            "energy_method": usage.energy_method,
            "pue": rates.pue,
            "carbon_region": rates.carbon_region,
            "g_co2e_per_kwh": rates.g_co2e_per_kwh,
            "egress_usd_per_gb": rates.egress_usd_per_gb,
        }
        if rates
        else {}
    )
    if vendor is not None:
        rated.update(
            provider=vendor.vendor,
            region=vendor.region,
            pricing_model="per-video-second",
            device="api",
            device_share=None,
            usd_per_device_hour=None,
            energy_method="vendor",
        )
    row = CostRecordRow(
        id=new_id(),
        job_id=job.id,
        tenant_id=job.tenant_id,
        project=job.project,
        campaign=job.campaign,
        model=job.model,
        state=job.state,
        node=job.worker_node,
        device_seconds=usage.device_seconds,
        idle_seconds=usage.idle_seconds,
        energy_kwh=figures.energy_kwh,
        co2e_kg=figures.co2e_kg,
        stored_bytes=usage.stored_bytes,
        video_seconds=usage.video_seconds,
        egress_bytes=0,
        compute_usd=figures.compute_usd,
        idle_usd=figures.idle_usd,
        storage_usd=figures.storage_usd,
        egress_usd=figures.egress_usd,
        total_usd=figures.total_usd,
        created_at=job.finished_at or utcnow(),
        **rated,
    )
    session.add(row)
    session.flush()
    return row


def add_egress(session: Session, job_id: str, nbytes: int) -> None:
    """Charge ``nbytes`` delivered from the job's output to its CostRecord (no record: nothing to charge)."""
    row = session.scalar(select(CostRecordRow).where(CostRecordRow.job_id == job_id).with_for_update())
    if row is None or nbytes <= 0:
        return
    extra = egress_usd(nbytes, row.egress_usd_per_gb or Decimal(0))
    session.execute(
        update(CostRecordRow)
        .where(CostRecordRow.id == row.id)
        .values(
            egress_bytes=row.egress_bytes + nbytes,
            egress_usd=row.egress_usd + extra,
            total_usd=row.total_usd + extra,
        )
        .execution_options(synchronize_session=False)
    )


def reprice_storage(
    session: Session,
    job_id: str,
    moved_at: datetime,
    cold_usd_per_gb_month: Decimal,
    *,
    tier: str = "cold",
    cold_days: float = 0.0,
) -> tuple[Decimal, Decimal] | None:
    """Re-price the storage part of a job's CostRecord now that its output moved to ``tier`` at ``moved_at``.

    The days it is hot are priced at the job's own storage rate (the hot tier's), the rest of the retention at
    ``cold_usd_per_gb_month``, counted from the record (the job's end). ``cold_days``: the cold periods it had
    before (ended by a move back to hot). Moved to cold: hot until ``moved_at`` less those; moved back to hot: hot
    for the whole retention less those. Computed from these figures, never added to the record's current one,
    so doing it again changes nothing; the total follows. Returns (old, new) storage dollars, or None when there
    is nothing to re-price (no record, or a job that never ran and has no rates)."""
    row = session.scalar(select(CostRecordRow).where(CostRecordRow.job_id == job_id).with_for_update())
    job = session.get(JobRow, job_id)
    if row is None or job is None or not job.meter:
        return None
    rates = Rates.from_json(job.meter)
    before = Decimal(str(cold_days))
    if tier == "cold":
        hot_days = Decimal(str((moved_at - row.created_at).total_seconds())) / Decimal(86400) - before
    else:
        hot_days = rates.retention_days - before
    new = tiered_storage_usd(
        row.stored_bytes, rates.storage_usd_per_gb_month, cold_usd_per_gb_month, hot_days, rates.retention_days
    )
    old = row.storage_usd
    session.execute(
        update(CostRecordRow)
        .where(CostRecordRow.id == row.id)
        .values(storage_usd=new, total_usd=row.total_usd - old + new)
        .execution_options(synchronize_session=False)
    )
    if new != old:  # an audit entry in the same transaction: who changed a recorded price, and why
        from reelfoundry.store import audit

        audit.append(
            session,
            "cost.repriced",
            actor="system",
            tenant_id=row.tenant_id,
            subject=job_id,
            data={
                "reason": f"storage moved to the {tier} tier",
                "moved_at": moved_at.isoformat(),
                "storage_usd_before": format(old, "f"),
                "storage_usd_after": format(new, "f"),
                "cold_usd_per_gb_month": format(cold_usd_per_gb_month, "f"),
                "cold_days_before": cold_days,
            },
        )
    log.info("job %s storage re-priced on its move to %s: %s -> %s USD", job_id, tier, old, new)
    return old, new


def costs_of(session: Session, job_ids: list[str]) -> dict[str, CostRecordRow]:
    """The cost records of these jobs, by job id."""
    if not job_ids:
        return {}
    rows = session.scalars(select(CostRecordRow).where(CostRecordRow.job_id.in_(job_ids)))
    return {r.job_id: r for r in rows}


def to_cost(row: CostRecordRow) -> CostRecord:
    """The public schema of a cost record (its fields are the row's columns of the same names)."""
    return CostRecord.model_validate(row, from_attributes=True)
