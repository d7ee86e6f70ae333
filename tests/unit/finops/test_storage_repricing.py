"""Re-pricing: when a job's video moves to the cold tier (or is promoted back to hot by a read), its CostRecord's
storage part becomes time-weighted (days hot at the hot rate + the rest of the retention at the cold rate); the
figures are worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select, update

from reelfoundry.assets.lifecycle import Rule, apply_moves, cold_price, cost_repricer, plan_moves
from reelfoundry.assets.objectstore import LocalStore
from reelfoundry.assets.tiered import TieredStore
from reelfoundry.config import Settings
from reelfoundry.finops.catalog import load_catalog
from reelfoundry.finops.meter import tiered_storage_usd
from reelfoundry.finops.rates import worker_rates
from reelfoundry.schema import VideoRequest
from reelfoundry.store import Database
from reelfoundry.store import costs as coststore
from reelfoundry.store import jobs as jobstore
from reelfoundry.store.objects import ObjectIndex
from reelfoundry.store.tables import AssetRow, AuditPendingRow, CostRecordRow, JobRow

T0 = datetime(2026, 1, 1, tzinfo=UTC)
GB2 = 2 * 10**9
#: One month of retention exactly (365.25 / 12 days), so $/GB-month × GB is the full-retention price.
MONTH_DAYS = "30.436875"
SETTINGS = Settings(
    worker_usd_per_device_hour=Decimal("3.6"),
    storage_retention_days=float(MONTH_DAYS),
    storage_cold_tier="aws/S3 Standard-IA",
)


def _finished_job(db: Database, tenant: str) -> tuple[str, str]:
    """A succeeded job with a 2 GB video priced at the local disk rate ($0.08/GB-month); (job id, video key)."""
    rates = worker_rates(SETTINGS, load_catalog(), device="cpu")
    assert rates.storage_usd_per_gb_month == Decimal("0.08") and rates.retention_days == Decimal(MONTH_DAYS)
    with db.write() as s:
        job = jobstore.create_job(
            s,
            tenant_id=tenant,
            request=VideoRequest(prompt="p", seed=1),
            model="template",
            max_attempts=1,
            body_hash="h",
        )
        key = f"{tenant}/A1.mp4"
        asset = AssetRow(
            id="A1",
            tenant_id=tenant,
            job_id=job.id,
            media_type="video/mp4",
            storage_key=key,
            bytes=GB2,
            sha256="x",
            created_at=T0,
        )
        s.add(asset)
        s.execute(
            update(JobRow)
            .where(JobRow.id == job.id)
            .values(state="succeeded", meter=rates.to_json(), finished_at=T0, device_seconds=10.0)
        )
        s.flush()
        s.refresh(job)
        record = coststore.record_final(s, job, asset)
        # 2 GB × $0.08 × 1 month; compute 10 s at $0.001/s
        assert (record.storage_usd, record.compute_usd) == (Decimal("0.16"), Decimal("0.01"))
        return job.id, key


def _record(db: Database, job_id: str) -> CostRecordRow:
    with db.read() as s:
        row = s.scalar(select(CostRecordRow).where(CostRecordRow.job_id == job_id))
        assert row is not None
        return row


def test_the_time_weighted_price() -> None:
    month = Decimal(MONTH_DAYS)
    hot, cold = Decimal("0.08"), Decimal("0.0125")
    assert tiered_storage_usd(GB2, hot, cold, month, month) == Decimal("0.16")  # never moved
    assert tiered_storage_usd(GB2, hot, cold, Decimal(0), month) == Decimal("0.025")  # cold from the start
    assert tiered_storage_usd(GB2, hot, cold, month / 2, month) == Decimal("0.0925")  # 2 × (0.04 + 0.00625)
    assert tiered_storage_usd(GB2, hot, cold, month * 3, month) == Decimal("0.16")  # moved after the retention
    assert tiered_storage_usd(GB2, hot, cold, Decimal(-1), month) == Decimal("0.025")


def test_a_move_to_cold_reprices_the_jobs_storage(
    database: Database, tenant_ids: tuple[str, str], tmp_path: Path
) -> None:
    job_id, key = _finished_job(database, tenant_ids[0])
    assert cold_price(SETTINGS) == Decimal("0.0125")
    clock = [T0]
    store = TieredStore(
        LocalStore(tmp_path / "hot"), LocalStore(tmp_path / "cold"), ObjectIndex(database, lambda: clock[0])
    )
    store.put_bytes(key, b"video")  # (the row's bytes are the record's 2 GB; the file's size does not matter)
    store.put_bytes(f"{tenant_ids[0]}/A1.jpg", b"poster")  # moves too, but prices nothing
    # half the month later (15.2184375 days), unread for more than the rule's 10 days: it moves
    clock[0] = T0 + timedelta(days=float(Decimal(MONTH_DAYS) / 2))
    moves = plan_moves(store.index.all("hot"), clock[0], Rule(cold_after_days=10))
    results = apply_moves(store, moves, cost_repricer(cold_price(SETTINGS)))
    assert {(r.key, r.outcome, r.storage_usd) for r in results} == {
        (key, "done", (Decimal("0.16"), Decimal("0.0925"))),
        (f"{tenant_ids[0]}/A1.jpg", "done", None),
    }
    record = _record(database, job_id)
    # half a month hot: 2 GB × 0.08 × 0.5 = 0.08; half cold: 2 GB × 0.0125 × 0.5 = 0.0125
    assert record.storage_usd == Decimal("0.0925")
    assert record.total_usd == Decimal("0.01") + Decimal("0.0925")
    # re-pricing is from the record's own figures, not incremental: doing it again changes nothing
    with database.write() as s:
        assert coststore.reprice_storage(s, job_id, clock[0], Decimal("0.0125")) == (
            Decimal("0.0925"),
            Decimal("0.0925"),
        )
    assert _record(database, job_id).total_usd == Decimal("0.1025")
    with database.read() as s:  # one audit entry, for the change (the no-op made none)
        entries = s.scalars(select(AuditPendingRow).where(AuditPendingRow.action == "cost.repriced")).all()
        assert [(e.subject, e.data["storage_usd_before"], e.data["storage_usd_after"]) for e in entries] == [
            (job_id, "0.1600000000", "0.0925000000")
        ]


def test_nothing_to_reprice_for_a_job_without_a_record(database: Database, tenant_ids: tuple[str, str]) -> None:
    with database.write() as s:
        job = jobstore.create_job(
            s,
            tenant_id=tenant_ids[0],
            request=VideoRequest(prompt="p"),
            model="template",
            max_attempts=1,
            body_hash="h",
        )
        assert coststore.reprice_storage(s, job.id, T0, Decimal("0.0125")) is None


def test_a_promotion_back_to_hot_reprices_and_a_second_move_to_cold_counts_both_cold_periods(
    database: Database, tenant_ids: tuple[str, str], tmp_path: Path
) -> None:
    job_id, key = _finished_job(database, tenant_ids[0])
    month = Decimal(MONTH_DAYS)
    clock = [T0]
    store = TieredStore(
        LocalStore(tmp_path / "hot"),
        LocalStore(tmp_path / "cold"),
        ObjectIndex(database, lambda: clock[0]),
        promote_on_read=True,
        on_move=cost_repricer(cold_price(SETTINGS)),
    )
    store.put_bytes(key, b"video")

    def at(fraction: str) -> None:
        clock[0] = T0 + timedelta(days=float(month * Decimal(fraction)))

    at("0.5")  # cold from half the month: 2 GB × (0.08 × 0.5 + 0.0125 × 0.5)
    apply_moves(store, plan_moves(store.index.all("hot"), clock[0], Rule(10)), cost_repricer(cold_price(SETTINGS)))
    assert _record(database, job_id).storage_usd == Decimal("0.0925")
    at("0.75")  # read at three quarters and promoted: cold only the quarter between → 2 × (0.08 × 0.75 + 0.0125 × 0.25)
    assert store.read_bytes(key) == b"video"
    assert store.hot.stat(key) is not None and store.cold.stat(key) is None
    record = _record(database, job_id)
    assert record.storage_usd == Decimal("0.12625") and record.total_usd == Decimal("0.13625")
    row = store.index.get(key)
    assert row is not None and row.tier == "hot" and row.cold_days == pytest.approx(float(month) / 4)
    # Cold again at 0.9 of the month: hot 0.5 + (0.9 - 0.75) = 0.65 of it, cold 0.35 → 2 × (0.052 + 0.004375)
    at("0.9")
    apply_moves(store, plan_moves(store.index.all("hot"), clock[0], Rule(0.1)), cost_repricer(cold_price(SETTINGS)))
    assert _record(database, job_id).storage_usd == Decimal("0.11275")
    with database.read() as s:
        reasons = [
            e.data["reason"]
            for e in s.scalars(select(AuditPendingRow).where(AuditPendingRow.action == "cost.repriced"))
        ]
    assert reasons == [
        "storage moved to the cold tier",
        "storage moved to the hot tier",
        "storage moved to the cold tier",
    ]
