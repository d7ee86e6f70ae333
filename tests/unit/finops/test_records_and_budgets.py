"""Cost records for attempts cut short, and budgets across a period boundary (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select, update

from reelfoundry.config import Settings
from reelfoundry.finops.catalog import load_catalog
from reelfoundry.finops.rates import worker_rates
from reelfoundry.schema import BudgetCreate, JobError, VideoRequest
from reelfoundry.store import Database
from reelfoundry.store import budgets as budgetstore
from reelfoundry.store import jobs as jobstore
from reelfoundry.store.tables import CostRecordRow, JobRow, utcnow


def _job(db: Database, tenant: str, estimate: str = "0.01", max_attempts: int = 1) -> str:
    req = VideoRequest(prompt="p", seed=1, labels={"campaign": "c"})
    with db.write() as s:
        return jobstore.create_job(
            s,
            tenant_id=tenant,
            request=req,
            model="template",
            max_attempts=max_attempts,
            body_hash="h",
            estimated_usd=Decimal(estimate),
        ).id


def _claim_priced(db: Database) -> JobRow:
    rates = worker_rates(Settings(worker_usd_per_device_hour=Decimal("3.6")), load_catalog(), device="cpu")
    with db.write() as s:
        row = jobstore.claim_next(s, "n1", jobstore.lease_deadline(60))
        assert row is not None
        row.meter = rates.to_json()
        return row


def test_an_attempt_lost_with_its_worker_is_charged_from_its_start(
    database: Database, tenant_ids: tuple[str, str]
) -> None:
    job_id = _job(database, tenant_ids[0])
    _claim_priced(database)
    with database.write() as s:  # the worker vanished 30 s into the attempt; its lease has run out
        s.execute(
            update(JobRow)
            .where(JobRow.id == job_id)
            .values(started_at=utcnow() - timedelta(seconds=30), lease_until=utcnow() - timedelta(seconds=1))
        )
    with database.write() as s:
        assert [r.state for r in jobstore.requeue_lost(s, node=None)] == ["failed"]  # no attempts left
    with database.read() as s:
        record = s.scalar(select(CostRecordRow).where(CostRecordRow.job_id == job_id))
    assert record is not None and 30 <= record.device_seconds < 40 and record.energy_method == "unmeasured"
    # $3.60/h is $0.001/s
    assert Decimal("0.030") <= record.compute_usd < Decimal("0.040")


def test_open_jobs_from_last_period_still_hold_their_reservation(
    database: Database, tenant_ids: tuple[str, str]
) -> None:
    tenant = tenant_ids[0]
    with database.write() as s:
        budget = budgetstore.create(
            s,
            tenant,
            BudgetCreate(name="m", scope="campaign", scope_value="c", period="month", limit_usd=Decimal("1")),
            "admin",
        )
        budget_id = budget.id
    old = _job(database, tenant, estimate="0.25")
    done = _job(database, tenant, estimate="0.10")
    last_month = datetime.now(UTC).replace(day=1) - timedelta(days=3)
    with database.write() as s:
        s.execute(update(JobRow).where(JobRow.id.in_([old, done])).values(created_at=last_month))
    with database.write() as s:  # `done` ended last month: its cost belongs to last month's budget
        jobstore.request_cancel(s, tenant, done)
        s.execute(
            update(CostRecordRow)
            .where(CostRecordRow.job_id == done)
            .values(created_at=last_month, total_usd=Decimal("0.07"))
        )
    with database.read() as s:
        standing = budgetstore.standing(s, s.get(budgetstore.BudgetRow, budget_id))
    # `old` is still queued: it will be billed when it ends (this month), so it still holds $0.25.
    assert standing.reserved == Decimal("0.25") and standing.spent == 0
    with database.write() as s:
        row = jobstore.claim_next(s, "n1", jobstore.lease_deadline(60))
        assert row is not None and row.id == old
        jobstore.fail(s, old, row.attempts, JobError(type="t", detail="d"), retry=False)
    with database.read() as s:
        standing = budgetstore.standing(s, s.get(budgetstore.BudgetRow, budget_id))
    assert standing.reserved == 0 and standing.spent == 0  # never ran anywhere priced: $0, nothing held
