"""The engine with the scheduler wired in, in-process (a fake executor, one virtual clock), on SQLite and PostgreSQL:
batches only of compatible jobs, interactive before batch, fair share between tenants, claims that skip what
another claimer holds, a cancel inside a batch, and a batch's jobs each with its own asset, manifest and cost."""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from faulty_backend import CARD as FAULTY_CARD
from sqlalchemy import select, text

from reelfoundry.assets.objectstore import LocalStore
from reelfoundry.clock import ManualClock
from reelfoundry.config import Settings
from reelfoundry.execution.engine import Engine
from reelfoundry.execution.executor import Executor
from reelfoundry.execution.messages import Finished, WorkBatch, WorkerOutput, WorkItem, WorkUnit
from reelfoundry.execution.worker import run_batch, run_item
from reelfoundry.finops.catalog import load_catalog
from reelfoundry.finops.rates import worker_rates
from reelfoundry.portfolio.base import Backend, GenerationOutput, GenerationParams, StepCallback
from reelfoundry.portfolio.registry import Portfolio
from reelfoundry.provenance.credentials import dev_credentials
from reelfoundry.provenance.manifest import GENERATION_LABEL, verify
from reelfoundry.schema import JobState, ModelCard, VideoRequest
from reelfoundry.store import Database
from reelfoundry.store import jobs as jobstore
from reelfoundry.store.tables import AssetRow, CostRecordRow, EventRow, JobRow, utcnow

#: A model that batches (up to 4), for the in-process end-to-end test.
BATCHY = ModelCard.model_validate(
    {**FAULTY_CARD, "id": "batchy", "resources": {"max_batch": 4}, "speed": {"cpu": {"s_per_step_mpf": 1.0}}}
)


def _units(units: Sequence[WorkUnit]) -> list[list[str]]:
    return [[i.job_id for i in u.items] if isinstance(u, WorkBatch) else [u.job_id] for u in units]


class FakeExecutor(Executor):
    """Slots that run nothing: the test says when a job ends."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self.active: list[WorkUnit] = []
        self.started: list[WorkUnit] = []
        self.cancelled: list[str] = []
        self.outbox: list[WorkerOutput] = []
        self.ended: set[str] = set()

    def free_slots(self) -> int:
        return self.slots - len(self.active)

    def execute(self, items: Sequence[WorkUnit]) -> None:
        assert len(items) <= self.free_slots()
        self.active += items
        self.started += items

    def poll(self, timeout: float, wake_fds: tuple[int, ...] = ()) -> list[WorkerOutput]:
        out, self.outbox = self.outbox, []
        return out

    def cancel(self, job_id: str) -> None:
        self.cancelled.append(job_id)

    def running(self) -> list[str]:
        return [job for unit in _units(self.active) for job in unit]

    def shutdown(self) -> None:
        pass

    def end(self, job_id: str, **kw: Any) -> None:
        """Report the job's end (cancelled unless told otherwise); its slot frees once its unit has no job left."""
        for unit in self.active:
            items = unit.items if isinstance(unit, WorkBatch) else (unit,)
            if any(i.job_id == job_id for i in items):
                attempt = next(i.attempt for i in items if i.job_id == job_id)
                self.outbox.append(Finished(job_id, attempt, **({"cancelled": True} | kw)))
                self.ended.add(job_id)
                if all(i.job_id in self.ended for i in items):
                    self.active.remove(unit)
                return
        raise AssertionError(f"{job_id} is not running")


class InProcessExecutor(FakeExecutor):
    """Runs each unit at once in this process through the worker's own run_item / run_batch."""

    def __init__(self, slots: int, backend: Backend) -> None:
        super().__init__(slots)
        self.backends: dict[str, Backend] = {backend.card.id: backend}

    def execute(self, items: Sequence[WorkUnit]) -> None:
        for unit in items:
            ours, theirs = mp.Pipe()
            if isinstance(unit, WorkBatch):
                reports, _ = run_batch(theirs, unit, self.backends)
            else:
                report, _ = run_item(theirs, unit, self.backends)
                reports = [report]
            while ours.poll():
                self.outbox.append(ours.recv())
            self.outbox += reports
            self.started.append(unit)


class Batchy(Backend):
    name = "batchy"

    def __init__(self, card: ModelCard) -> None:
        super().__init__(card)
        self.calls: list[list[int]] = []

    def generate(self, params: GenerationParams, callback: StepCallback | None = None) -> GenerationOutput:
        return self.generate_batch([params], callback)[0]

    def generate_batch(
        self, params_list: Sequence[GenerationParams], callback: StepCallback | None = None
    ) -> list[GenerationOutput]:
        self.calls.append([p.seed for p in params_list])
        for step in (1, 2):
            if callback is not None:
                callback(step, 2)
        return [GenerationOutput(np.full((8, 64, 64, 3), p.seed % 200, np.uint8), 8, 8) for p in params_list]


@dataclass
class Node:
    engine: Engine
    executor: FakeExecutor
    clock: ManualClock
    db: Database


@pytest.fixture
def make_node(database: Database, tmp_path: Path) -> Iterator[Any]:
    engines: list[Engine] = []

    def make(slots: int = 4, executor: FakeExecutor | None = None, **settings: Any) -> Node:
        # Batching on, as on a GPU node (a CPU node's default is off).
        values = {"batching": True, **settings}
        config = Settings(data_dir=tmp_path / f"node{len(engines)}", worker_slots=slots, **values)
        config.data_dir.mkdir(parents=True, exist_ok=True)
        clock = ManualClock(utcnow())
        executor = executor or FakeExecutor(slots)
        rates = worker_rates(config, load_catalog(), device="cpu")
        engine = Engine(
            config,
            database,
            Portfolio([BATCHY]),
            LocalStore(config.media_dir),
            executor,
            f"node-{len(engines)}",
            dev_credentials(tmp_path),
            rates,
            clock=clock,
        )
        engines.append(engine)
        return Node(engine, executor, clock, database)

    yield make


def _submit(db: Database, tenant: str, model: str = "builtin", priority: str = "interactive", **kw: Any) -> str:
    request = VideoRequest(prompt=kw.pop("prompt", "a red circle"), model=model, priority=priority, **kw)
    with db.write() as session:
        row = jobstore.create_job(
            session,
            tenant_id=tenant,
            request=request,
            model=model,
            max_attempts=2,
            body_hash=jobstore.request_hash(request.model_dump(mode="json")),
        )
        return row.id


def _state(db: Database, job_id: str) -> str:
    with db.read() as session:
        row = session.get(JobRow, job_id)
        assert row is not None
        return row.state


def _events(db: Database, job_id: str) -> list[str]:
    with db.read() as session:
        return list(session.scalars(select(EventRow.type).where(EventRow.job_id == job_id).order_by(EventRow.id)))


def test_only_compatible_jobs_share_a_batch(make_node: Any, tenant_ids: tuple[str, str]) -> None:
    node = make_node(slots=8)
    a, b = tenant_ids
    same = [_submit(node.db, a, seed=s, steps=4) for s in (1, 2)] + [_submit(node.db, b, seed=3, steps=4)]
    others = [
        _submit(node.db, a, seed=4, steps=5),  # other steps
        _submit(node.db, a, seed=5, steps=4, guidance_scale=7.0),  # other guidance
        _submit(node.db, a, seed=6, steps=4, negative_prompt="blurry"),  # a negative prompt
        _submit(node.db, a, model="template", seed=7),  # another model
    ]
    node.engine.step()
    units = _units(node.executor.started)
    assert sorted(map(sorted, units)) == sorted([sorted(same), *([j] for j in others)])
    batch = next(u for u in node.executor.started if isinstance(u, WorkBatch))
    assert {(i.card.id, i.params.steps, i.params.guidance_scale, i.params.negative_prompt) for i in batch.items} == {
        ("builtin", 4, 4.0, None)
    }
    for job_id in same + others:  # each claimed job is running, with its own job.running event
        assert _state(node.db, job_id) == "running" and _events(node.db, job_id) == ["job.queued", "job.running"]


def test_batching_off_runs_one_job_per_slot(make_node: Any, tenant_ids: tuple[str, str]) -> None:
    node = make_node(slots=2, batching=False)
    jobs = [_submit(node.db, tenant_ids[0], seed=s, steps=4) for s in range(4)]
    node.engine.step()
    assert _units(node.executor.started) == [[jobs[0]], [jobs[1]]]


def test_a_batch_never_exceeds_the_models_max_batch(make_node: Any, tenant_ids: tuple[str, str]) -> None:
    node = make_node(slots=1)
    jobs = [_submit(node.db, tenant_ids[0], model="batchy", seed=s) for s in range(6)]
    node.engine.step()
    assert _units(node.executor.started) == [jobs[:4]]  # max_batch 4; the rest wait for a slot


def test_a_partial_batch_of_batch_jobs_waits_batch_wait_s_for_more(make_node: Any, tenant_ids: tuple[str, str]) -> None:
    node = make_node(slots=2, batch_wait_s=60)
    waiting = [_submit(node.db, tenant_ids[0], priority="batch", seed=s) for s in (1, 2)]
    urgent = _submit(node.db, tenant_ids[0], priority="interactive", seed=3, steps=7)
    node.engine.step()
    assert _units(node.executor.started) == [[urgent]]  # interactive work never waits
    node.clock.advance(30)
    late = _submit(node.db, tenant_ids[1], priority="batch", seed=4)
    node.engine.step()
    assert len(node.executor.started) == 1  # the batch may still fill
    node.clock.advance(31)
    node.engine.step()
    # The other tenant's job heads the batch (fair share: the first tenant has a job running).
    assert _units(node.executor.started)[1] == [late, *waiting]


def test_interactive_jobs_go_before_older_batch_jobs(make_node: Any, tenant_ids: tuple[str, str]) -> None:
    node = make_node(slots=1, batching=False)
    for s in range(3):
        _submit(node.db, tenant_ids[0], priority="batch", seed=s)
    urgent = _submit(node.db, tenant_ids[1], priority="interactive", seed=9)
    node.engine.step()
    assert _units(node.executor.started) == [[urgent]]


def test_a_tenant_flooding_the_queue_does_not_starve_another(make_node: Any, tenant_ids: tuple[str, str]) -> None:
    node = make_node(slots=1, batching=False)
    flood, other = tenant_ids
    flooded = [_submit(node.db, flood, seed=s) for s in range(10)]
    late = _submit(node.db, other, seed=99)  # submitted after all ten
    order: list[str] = []
    for _ in range(3):
        node.engine.step()
        (job,) = _units(node.executor.active)[0]
        order.append(job)
        node.clock.advance(30)
        node.executor.end(job, cancelled=True, seconds=30.0)
    # FIFO would run the late tenant's job eleventh; fair share runs it as soon as the flood has used the device.
    assert order == [flooded[0], late, flooded[1]]


def test_claim_ids_skips_jobs_another_node_took(database: Database, tenant_ids: tuple[str, str]) -> None:
    x, y = (_submit(database, tenant_ids[0], seed=s) for s in (1, 2))
    lease = utcnow()
    with database.write() as session:
        assert [r.id for r in jobstore.claim_ids(session, [x], "other", lease)] == [x]
    with database.write() as session:
        rows = jobstore.claim_ids(session, [x, y, "no-such-job"], "n1", lease)
        assert [(r.id, r.worker_node, r.attempts) for r in rows] == [(y, "n1", 1)]
    assert _events(database, x) == ["job.queued", "job.running"]  # one claim, one event


def test_claim_ids_passes_over_rows_another_claimer_holds_locked(
    database: Database, tenant_ids: tuple[str, str]
) -> None:
    if database.dialect != "postgresql":
        pytest.skip("row locks: SQLite has one writer at a time, so no claimer can hold a row while another claims")
    x, y = (_submit(database, tenant_ids[0], seed=s) for s in (1, 2))
    with database.engine.connect() as holder:
        holder.begin()
        holder.execute(select(JobRow.id).where(JobRow.id == x).with_for_update())  # another claimer, mid-claim
        with database.write() as session:
            session.execute(text("SET LOCAL lock_timeout = '2s'"))  # waiting on the lock would fail the test
            rows = jobstore.claim_ids(session, [x, y], "n1", utcnow())
            assert [r.id for r in rows] == [y]
        holder.rollback()
    assert _state(database, x) == "queued"


def test_cancel_of_one_batch_member_ends_only_that_job(make_node: Any, tenant_ids: tuple[str, str]) -> None:
    node = make_node(slots=1)
    jobs = [_submit(node.db, tenant_ids[0], seed=s) for s in range(3)]
    node.engine.step()
    assert _units(node.executor.started) == [jobs]
    with node.db.write() as session:
        jobstore.request_cancel(session, tenant_ids[0], jobs[1])
    node.clock.advance(1)
    node.engine.step()  # housekeeping passes the cancel to the executor: that job only
    assert node.executor.cancelled == [jobs[1]]
    node.executor.end(jobs[1], cancelled=True, seconds=1.0)
    node.engine.step()
    assert [_state(node.db, j) for j in jobs] == ["running", "cancelled", "running"]
    assert node.executor.free_slots() == 0 and node.executor.started == node.executor.active  # the rest go on
    for job_id in (jobs[0], jobs[2]):
        node.executor.end(job_id, cancelled=True, seconds=2.0)
    node.engine.step()
    assert node.engine._units == {} and node.executor.free_slots() == 1


def test_each_job_of_a_batch_gets_its_own_asset_manifest_and_cost_record(
    make_node: Any, tenant_ids: tuple[str, str], tmp_path: Path
) -> None:
    backend = Batchy(BATCHY)
    node = make_node(slots=1, executor=InProcessExecutor(1, backend))
    jobs = [_submit(node.db, tenant_ids[0], model="batchy", seed=s) for s in (11, 12, 13)]
    node.engine.step()
    assert backend.calls == [[11, 12, 13]]  # one generation for the three
    with node.db.read() as session:
        rows = {r.id: r for r in session.scalars(select(JobRow).where(JobRow.id.in_(jobs)))}
        assets = {a.job_id: a for a in session.scalars(select(AssetRow).where(AssetRow.job_id.in_(jobs)))}
        costs = {c.job_id: c for c in session.scalars(select(CostRecordRow).where(CostRecordRow.job_id.in_(jobs)))}
    assert {r.state for r in rows.values()} == {JobState.succeeded.value}
    assert len({a.id for a in assets.values()}) == 3 and set(costs) == set(jobs)
    # The batch's device time split among its jobs: equal shares, each charged to its own record.
    assert len({round(c.device_seconds, 12) for c in costs.values()}) == 1 and costs[jobs[0]].device_seconds > 0
    for job_id in jobs:
        assert rows[job_id].asset_id == assets[job_id].id
        with node.engine.storage.local_copy(assets[job_id].storage_key, tmp_path) as video:
            assert verify(video).manifests[0].assertions[GENERATION_LABEL]["job_id"] == job_id
        assert _events(node.db, job_id)[-1] == "job.succeeded" and "job.progress" in _events(node.db, job_id)


def test_the_engine_reads_time_from_its_clock(make_node: Any, tenant_ids: tuple[str, str]) -> None:
    node = make_node(slots=1, lease_s=60)
    job = _submit(node.db, tenant_ids[0], seed=1)
    node.clock.advance(3600)  # an hour ahead of the machine's clock
    node.engine.step()
    with node.db.read() as session:
        row = session.get(JobRow, job)
        assert row is not None
        assert row.started_at == node.clock.now()
        assert row.lease_until == node.clock.now() + timedelta(seconds=60)


def test_batching_is_off_by_default_on_a_cpu_node(make_node: Any) -> None:
    assert make_node(slots=1, batching=None).engine.batching is False


class LosesFirstAttempts(InProcessExecutor):
    """Each job's first attempt is lost with its worker (as a Ray task whose node died): a retryable error."""

    def execute(self, items: Sequence[WorkUnit]) -> None:
        for unit in items:
            assert isinstance(unit, WorkItem)
            if unit.attempt == 1:
                self.started.append(unit)
                self.outbox.append(
                    Finished(
                        unit.job_id,
                        unit.attempt,
                        error_type="about:blank",
                        error_detail="the Ray task was lost",
                        retryable=True,
                    )
                )
            else:
                super().execute([unit])


def test_an_attempt_lost_with_its_worker_is_requeued_and_the_job_finishes_once(
    make_node: Any, tenant_ids: tuple[str, str]
) -> None:
    executor = LosesFirstAttempts(1, Batchy(BATCHY))
    node = make_node(slots=1, executor=executor)
    job = _submit(node.db, tenant_ids[0], model="batchy", seed=5)
    for _ in range(4):
        node.engine.step()
    # A late report of the lost attempt (its node came back) changes nothing: the job moved on.
    executor.outbox.append(Finished(job, 1, error_type="about:blank", error_detail="late"))
    node.engine.step()
    with node.db.read() as session:
        row = session.get(JobRow, job)
        assets = list(session.scalars(select(AssetRow).where(AssetRow.job_id == job)))
    assert row is not None and row.state == JobState.succeeded.value and row.attempts == 2
    assert len(assets) == 1 and [u.attempt for u in executor.started] == [1, 2]  # type: ignore[union-attr]
    events = _events(node.db, job)
    assert events.count("job.requeued") == 1 and events.count("job.succeeded") == 1
