"""``GET /metrics``: Prometheus text format.

Two sources: histograms this process observes as its engine runs jobs (queue wait, run time), and
figures read from the database at scrape time (jobs by state, money, energy and carbon by tenant and
model, budgets' remaining dollars), so a restart loses nothing. The totals come from one process only: a
``serve --role all`` server, or among the roles the scheduler holding the lease (API and worker processes and
a standby scheduler export their own figures alone), so a sum over replicas counts every job once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from reelfoundry.schema import JobState
from reelfoundry.store import budgets as budgetstore
from reelfoundry.store.tables import BudgetRow, CostRecordRow, JobRow, TenantRow

if TYPE_CHECKING:
    from reelfoundry.platform import Platform

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_WAIT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
_RUN_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)


class Metrics:
    """One registry per platform (several platforms in one process, as in tests, never collide)."""

    def __init__(self, platform: Platform) -> None:
        self.registry = CollectorRegistry()
        self.queue_wait = Histogram(
            "reelfoundry_job_queue_wait_seconds",
            "Seconds from submission to a worker starting the job.",
            ["model"],
            buckets=_WAIT_BUCKETS,
            registry=self.registry,
        )
        self.run_time = Histogram(
            "reelfoundry_job_run_seconds",
            "Seconds an attempt held its device, by how it ended.",
            ["model", "outcome"],
            buckets=_RUN_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_DatabaseCollector(platform))

    def render(self) -> bytes:
        """The exposition text."""
        return generate_latest(self.registry)


class _DatabaseCollector(Collector):
    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def collect(self) -> Iterator[Metric]:
        yield from self._devices()
        if not self.platform.exports_totals:
            return  # another process (the leading scheduler) exports the database-wide totals
        with self.platform.db.read() as session:
            jobs = GaugeMetricFamily("reelfoundry_jobs", "Jobs by state.", labels=["state"])
            counts = dict(session.execute(select(JobRow.state, func.count()).group_by(JobRow.state)).all())
            for state in JobState:
                jobs.add_metric([state.value], counts.get(state.value, 0))
            yield jobs

            money = CounterMetricFamily(
                "reelfoundry_cost_usd", "US dollars charged to ended jobs.", labels=["tenant", "model"]
            )
            energy = CounterMetricFamily(
                "reelfoundry_energy_kwh", "Facility energy of ended jobs (kWh).", labels=["tenant", "model"]
            )
            carbon = CounterMetricFamily(
                "reelfoundry_co2e_kg", "Emissions of ended jobs (kg CO2e).", labels=["tenant", "model"]
            )
            device = CounterMetricFamily(
                "reelfoundry_device_seconds", "Device-seconds held by ended jobs.", labels=["tenant", "model"]
            )
            stmt = (
                select(
                    TenantRow.name,
                    CostRecordRow.model,
                    func.sum(CostRecordRow.total_usd),
                    func.sum(CostRecordRow.energy_kwh),
                    func.sum(CostRecordRow.co2e_kg),
                    func.sum(CostRecordRow.device_seconds),
                )
                .join(TenantRow, TenantRow.id == CostRecordRow.tenant_id)
                .group_by(TenantRow.name, CostRecordRow.model)
            )
            for tenant, model, usd, kwh, co2e, seconds in session.execute(stmt):
                labels = [tenant, model]
                money.add_metric(labels, float(usd or 0))
                energy.add_metric(labels, float(kwh or 0))
                carbon.add_metric(labels, float(co2e or 0))
                device.add_metric(labels, float(seconds or 0))
            yield from (money, energy, carbon, device)

            remaining = GaugeMetricFamily(
                "reelfoundry_budget_remaining_usd",
                "What is left of each budget in its current period (negative once overrun).",
                labels=["tenant", "budget_id", "budget", "scope", "period", "enforcement"],
            )
            budgets = session.execute(
                select(BudgetRow, TenantRow.name).join(TenantRow, TenantRow.id == BudgetRow.tenant_id)
            )
            for budget, tenant in budgets:
                left = budgetstore.standing(session, budget).remaining(budget.limit_usd)
                scope = budget.scope + (f":{budget.scope_value}" if budget.scope_value else "")
                labels = [tenant, budget.id, budget.name, scope, budget.period, budget.enforcement]
                remaining.add_metric(labels, float(left))
            yield remaining

    def _devices(self) -> Iterator[Metric]:
        engine = self.platform.engine
        if engine is None:
            return
        ledger = engine.idle
        node = self.platform.node
        util = GaugeMetricFamily(
            "reelfoundry_device_utilisation", "Busy share of this node's worker slots right now.", labels=["node"]
        )
        util.add_metric([node], ledger.busy / max(ledger.slots, 1))
        yield util
        busy = CounterMetricFamily(
            "reelfoundry_device_busy_seconds", "Slot-seconds this node's workers ran jobs.", labels=["node"]
        )
        busy.add_metric([node], ledger.busy_total)
        yield busy
        idle = CounterMetricFamily(
            "reelfoundry_device_idle_seconds", "Slot-seconds this node's workers waited for work.", labels=["node"]
        )
        idle.add_metric([node], ledger.idle_total)
        yield idle
