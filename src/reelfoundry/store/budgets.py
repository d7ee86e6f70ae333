"""Budgets: what they allow, what is spent and reserved against them, and the check at admission.

Admission locks the budget rows that apply (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite writers are
serialised anyway), sums spend and reservations, and inserts the job in the same transaction: two
submissions can never both take the last dollar.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import bindparam, func, or_, select
from sqlalchemy.orm import Session

from reelfoundry.errors import BudgetExceeded
from reelfoundry.finops.meter import usd_text
from reelfoundry.ids import new_id
from reelfoundry.schema import Budget, BudgetCreate, BudgetPeriod, BudgetScope, Enforcement, JobState
from reelfoundry.store.owned import owned
from reelfoundry.store.pagination import page_of, paginate
from reelfoundry.store.tables import BudgetRow, CostRecordRow, JobRow, utcnow

_OPEN = (JobState.queued.value, JobState.running.value)
# Built once: every submission asks it, and most tenants have no budgets (then nothing else runs).
_ANY_BUDGET = select(BudgetRow.id).where(BudgetRow.tenant_id == bindparam("tenant_id")).limit(1)


def period_start(period: str, now: datetime) -> datetime | None:
    """The UTC start of the period ``now`` falls in (None for total)."""
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == BudgetPeriod.day:
        return day
    if period == BudgetPeriod.week:
        return day - timedelta(days=day.weekday())
    if period == BudgetPeriod.month:
        return day.replace(day=1)
    return None


def create(session: Session, tenant_id: str, body: BudgetCreate, actor: str) -> BudgetRow:
    """Add a budget to the tenant."""
    row = BudgetRow(
        id=new_id(),
        tenant_id=tenant_id,
        name=body.name,
        scope=body.scope.value,
        scope_value=body.scope_value,
        period=body.period.value,
        limit_usd=body.limit_usd,
        enforcement=body.enforcement.value,
        created_by=actor,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return row


def get(session: Session, tenant_id: str, budget_id: str) -> BudgetRow:
    """A budget of this tenant, or NotFound."""
    return owned(session, BudgetRow, tenant_id, budget_id, "budget")


def list_budgets(
    session: Session, tenant_id: str, *, cursor: str | None, limit: int
) -> tuple[list[BudgetRow], str | None]:
    """A page of the tenant's budgets, newest first."""
    stmt = select(BudgetRow).where(BudgetRow.tenant_id == tenant_id)
    return page_of(list(session.scalars(paginate(stmt, BudgetRow.id, cursor, limit))), limit)


def any_budget(session: Session, tenant_id: str) -> bool:
    """Whether the tenant has any budget (one indexed probe; most tenants have none)."""
    return session.execute(_ANY_BUDGET, {"tenant_id": tenant_id}).first() is not None


def applicable(
    session: Session, tenant_id: str, project: str | None, campaign: str | None, *, lock: bool
) -> list[BudgetRow]:
    """The budgets a job with these labels counts against, in id order (locked for update when ``lock``)."""
    conds = [BudgetRow.scope == BudgetScope.tenant.value]
    if project is not None:
        conds.append((BudgetRow.scope == BudgetScope.project.value) & (BudgetRow.scope_value == project))
    if campaign is not None:
        conds.append((BudgetRow.scope == BudgetScope.campaign.value) & (BudgetRow.scope_value == campaign))
    stmt = select(BudgetRow).where(BudgetRow.tenant_id == tenant_id, or_(*conds)).order_by(BudgetRow.id)
    if lock:
        stmt = stmt.with_for_update()
    return list(session.scalars(stmt))


@dataclass(frozen=True)
class Standing:
    """Where a budget stands now."""

    period_start: datetime | None
    spent: Decimal
    reserved: Decimal

    def remaining(self, limit: Decimal) -> Decimal:
        """What is left of ``limit``."""
        return limit - self.spent - self.reserved


def standing(session: Session, budget: BudgetRow, now: datetime | None = None) -> Standing:
    """Spend in the budget's current period (cost records of jobs that ended in it) and what every open job
    in scope holds (its estimate: it will be billed when it ends, so in this period or a later one).

    Both sums come from one statement, so a job ending meanwhile is counted once, never zero times.
    """
    start = period_start(budget.period, now or utcnow())
    spent_q = select(func.sum(CostRecordRow.total_usd)).where(CostRecordRow.tenant_id == budget.tenant_id)
    held_q = select(func.sum(JobRow.estimated_usd)).where(JobRow.tenant_id == budget.tenant_id, JobRow.state.in_(_OPEN))
    if start is not None:
        spent_q = spent_q.where(CostRecordRow.created_at >= start)
    if budget.scope == BudgetScope.project.value:
        spent_q = spent_q.where(CostRecordRow.project == budget.scope_value)
        held_q = held_q.where(JobRow.project == budget.scope_value)
    elif budget.scope == BudgetScope.campaign.value:
        spent_q = spent_q.where(CostRecordRow.campaign == budget.scope_value)
        held_q = held_q.where(JobRow.campaign == budget.scope_value)
    spent, reserved = session.execute(select(spent_q.scalar_subquery(), held_q.scalar_subquery())).one()
    return Standing(start, Decimal(spent or 0), Decimal(reserved or 0))


def reserve(
    session: Session, tenant_id: str, project: str | None, campaign: str | None, estimate: Decimal
) -> list[tuple[BudgetRow, Standing]]:
    """Check a job's estimate against every budget it counts against; BudgetExceeded (402) for a hard one
    it would overrun. Returns the soft budgets it crosses now (each warns once per period)."""
    crossed: list[tuple[BudgetRow, Standing]] = []
    if not any_budget(session, tenant_id):
        return crossed
    for budget in applicable(session, tenant_id, project, campaign, lock=True):
        now = standing(session, budget)
        remaining = now.remaining(budget.limit_usd)
        if estimate <= remaining:
            continue
        if budget.enforcement == "hard":
            raise BudgetExceeded(
                f"budget {budget.name!r} ({budget.scope}{' ' + budget.scope_value if budget.scope_value else ''}, "
                f"{budget.period}) has ${usd_text(remaining)} left; this job is estimated at ${usd_text(estimate)}",
                budget_id=budget.id,
                budget=budget.name,
                scope=budget.scope,
                scope_value=budget.scope_value,
                period=budget.period,
                limit_usd=usd_text(budget.limit_usd),
                spent_usd=usd_text(now.spent),
                reserved_usd=usd_text(now.reserved),
                remaining_usd=usd_text(remaining),
                estimate_usd=usd_text(estimate),
            )
        marker = now.period_start or budget.created_at  # a total budget warns once
        if budget.warned_period != marker:
            budget.warned_period = marker
            crossed.append((budget, now))
    return crossed


def to_budget(session: Session, row: BudgetRow) -> Budget:
    """The public schema of a budget, with where it stands now."""
    now = standing(session, row)
    return Budget(
        id=row.id,
        tenant_id=row.tenant_id,
        name=row.name,
        scope=BudgetScope(row.scope),
        scope_value=row.scope_value,
        period=BudgetPeriod(row.period),
        enforcement=Enforcement(row.enforcement),
        limit_usd=row.limit_usd,
        period_start=now.period_start,
        spent_usd=now.spent,
        reserved_usd=now.reserved,
        remaining_usd=now.remaining(row.limit_usd),
        created_at=row.created_at,
    )
