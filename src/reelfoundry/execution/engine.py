"""The engine: claims jobs, hands them to an executor, records what comes back.

The loop is three calls, as in vLLM's engine core::

    units = self.schedule()                     # choose queued jobs for the free slots, claim them
    outputs = self.executor... execute / poll   # run them, collect progress and results
    self.update_from_output(outputs)            # write states, assets and events

``schedule`` reads a window of queued jobs, asks the pure scheduling core
(:func:`reelfoundry.scheduling.schedule`: interactive before batch, weighted fair share between tenants,
earliest deadline first, batches of compatible jobs) where they go on this node's free slots, and claims
the chosen ids; a job another node took meanwhile is skipped. A batch runs on one slot as one unit
(:class:`~reelfoundry.execution.messages.WorkBatch`); each of its jobs still has its own progress, events,
asset, manifest and cost record.

The database is the only shared state, so a crash anywhere loses nothing: on
start the engine re-queues the jobs this node was running. Time comes from one
:class:`~reelfoundry.clock.Clock` (the scheduler's ``now``, leases, stamps, the idle meter).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from reelfoundry.assets import adapters
from reelfoundry.assets import keys as storage_keys
from reelfoundry.assets.objectstore import ObjectStore, StorageUnavailable
from reelfoundry.clock import SYSTEM_CLOCK, Clock
from reelfoundry.config import Settings
from reelfoundry.errors import InvalidParameter, ReelFoundryError
from reelfoundry.execution.executor import Executor
from reelfoundry.execution.leader import Leadership
from reelfoundry.execution.messages import (
    FinetuneWork,
    Finished,
    OutputKeys,
    Progress,
    WorkBatch,
    WorkerOutput,
    WorkItem,
    WorkUnit,
)
from reelfoundry.execution.worker import adapter_dir
from reelfoundry.finops.energy import EnergySpec
from reelfoundry.finops.meter import IdleLedger, Rates
from reelfoundry.ids import new_id
from reelfoundry.media.probe import file_digest
from reelfoundry.observability.metrics import Metrics
from reelfoundry.observability.tracing import Tracer
from reelfoundry.portfolio.base import FinetuneSpec, GenerationParams
from reelfoundry.portfolio.registry import Portfolio
from reelfoundry.provenance.credentials import SigningCredentials
from reelfoundry.provenance.manifest import signing_for
from reelfoundry.routing import resolve_params
from reelfoundry.routing.plan import resolved
from reelfoundry.routing.state import work_params
from reelfoundry.scheduling import DeviceSpeed, Job, ModelProfile, Placement
from reelfoundry.scheduling import schedule as place_jobs
from reelfoundry.scheduling.live import FairShare, batch_class, node_fleet, node_slot_type, profile_for
from reelfoundry.schema import JobError, JobState, ModelCard, ReviewState, RoutePlan, VideoRequest
from reelfoundry.schema.finetune import FinetuneState
from reelfoundry.store import Database
from reelfoundry.store import assets as assetstore
from reelfoundry.store import finetunes as finetunestore
from reelfoundry.store import jobs as jobstore
from reelfoundry.store import lease as leasestore
from reelfoundry.store import models as modelstore
from reelfoundry.store import pending as pendingstore
from reelfoundry.store.tables import AssetRow, FinetuneRow, JobRow

log = logging.getLogger(__name__)

#: How often the engine (the elected scheduler's, or each when none is elected) sweeps orphaned objects.
_SWEEP_INTERVAL_S = 5.0

#: The speed given a job that cannot run (it is claimed only to be failed).
_ANY_SPEED = DeviceSpeed(0.0, 0.0, "unrunnable")


@dataclass
class _Running:
    tenant_id: str
    project: str | None
    campaign: str | None
    submitted_by: str | None
    model: str = ""
    last_progress_write: float = -float("inf")
    #: The unit (an item or a batch) it runs in: a slot is busy while any job of its unit runs.
    unit: int = 0
    #: The attempt's inputs: (storage key, the local copy in the work dir the worker reads).
    inputs: tuple[tuple[str, Path], ...] = ()
    #: Where the attempt's output goes in the store (recorded as pending objects in the claim's transaction).
    output: OutputKeys | None = None
    #: The fine-tune this job runs (a job of kind finetune), and its base card.
    finetune_id: str | None = None
    base_card: ModelCard | None = None
    #: The assets the fine-tune's attempt reads (those still allowed when it started).
    trained_on: tuple[str, ...] = ()

    @classmethod
    def of(cls, row: JobRow, **attempt: Any) -> _Running:
        """A claimed job's bookkeeping: who and what it is for, plus what this attempt runs with."""
        return cls(row.tenant_id, row.project, row.campaign, row.submitted_by, row.model, **attempt)

    #: A fine-tuned model's adapter: its files and where this node caches them.
    adapter: adapters.CachedAdapter = field(default_factory=adapters.CachedAdapter)


@dataclass
class _Queued:
    """What the scheduler needs of one queued job (resolved once, while it stays in the window)."""

    job_id: str
    tenant_id: str
    priority: str
    created_at: datetime
    deadline_s: float | None
    #: The scheduling ``model``: jobs batch only when it and their frames, size and steps are equal.
    batch_class: str
    profile: ModelProfile
    num_frames: int = 1
    width: int = 1
    height: int = 1
    steps: int = 1

    def job(self, index: int) -> Job:
        t = self.created_at.timestamp()
        return Job(
            id=index,
            t=t,
            tenant=self.tenant_id,
            model=self.batch_class,
            priority="interactive" if self.priority == "interactive" else "batch",
            num_frames=self.num_frames,
            width=self.width,
            height=self.height,
            steps=self.steps,
            deadline=None if self.deadline_s is None else t + self.deadline_s,
        )


@dataclass
class _Window:
    """Queued jobs seen by the last turns, by (id, model): a job re-routed to another model is seen anew."""

    jobs: dict[tuple[str, str], _Queued] = field(default_factory=dict)
    profiles: dict[str, ModelProfile] = field(default_factory=dict)


class Engine:
    """Drives jobs from queued to a final state on this node."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        portfolio: Portfolio,
        storage: ObjectStore,
        executor: Executor,
        node: str,
        credentials: SigningCredentials,
        rates: Rates | None = None,
        metrics: Metrics | None = None,
        tracer: Tracer | None = None,
        clock: Clock | None = None,
        leader: Leadership | None = None,
    ) -> None:
        self.settings = settings
        #: The scheduler election, when this engine is an elected scheduler's: it claims and re-queues only
        #: while it holds the lease, each such write fenced by the lease's epoch (None: it always schedules).
        self.leader = leader
        #: Where the engine, the scheduler (its ``now``) and the idle meter read the time.
        self.clock: Clock = clock or SYSTEM_CLOCK
        #: What the node's device costs; each claimed job keeps a copy, so its price never drifts.
        self.rates = rates
        #: What workers need to measure each attempt's energy (the same for every job on this node).
        self.energy = EnergySpec(rates.device, float(rates.device_share), float(rates.tdp_w)) if rates else None
        self.idle = IdleLedger(settings.worker_slots, clock=self.clock)
        #: One worker slot of this node as the scheduler sees it (device class, memory, price).
        self.slot_type = node_slot_type(settings, rates)
        #: Batch compatible jobs: as configured, else on GPUs only (a CPU is compute-bound at batch 1 already, so a
        #: batch there only makes every job of it wait for the last; benchmarks/RESULTS.md).
        self.batching = settings.batching if settings.batching is not None else self.slot_type.device != "cpu"
        #: When a failing model rests (consecutive backend failures, cooldown).
        self.health = jobstore.Health(settings.routing_cooldown_failures, settings.routing_cooldown_s)
        #: How a storage outage re-queues a job (back-off, not counted against its attempts).
        self.storage_retry = jobstore.StorageRetry(
            settings.storage_retry_limit, settings.storage_retry_base_s, settings.storage_retry_max_s
        )
        #: How long an attempt's unrecorded objects may stay before the sweep deletes them as orphans.
        self.orphan_grace_s = settings.orphan_grace_s or settings.job_timeout_s + 2 * settings.lease_s
        self.fair_share = FairShare(self.clock)
        self.metrics = metrics
        self.tracer = tracer or Tracer()
        self.db = db
        self.portfolio = portfolio
        self.storage = storage
        self.executor = executor
        self.node = node
        self.work_dir = settings.data_dir / "work"
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.credentials = credentials  # every output is C2PA-signed with these
        self._running: dict[str, _Running] = {}
        #: Units in flight → their jobs not yet ended (one busy slot each).
        self._units: dict[int, set[str]] = {}
        self._unit_ids = itertools.count(1)
        self._window = _Window()
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._thread: threading.Thread | None = None
        self._last_housekeeping = -float("inf")
        self._last_lease = -float("inf")
        self._last_sweep = -float("inf")
        #: Evaluations of new fine-tunes running in the background (joined at stop).
        self._evaluations: list[threading.Thread] = []

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Re-queue what this node left running, then run the loop in a thread."""
        _empty(self.work_dir)  # half-written output of attempts a crash cut short
        with self.db.write() as session:
            for row in jobstore.requeue_lost(session, node=self.node):
                log.info("job %s re-queued after restart (state %s)", row.id, row.state)
            self._abandon_own_objects(session)
        self._thread = threading.Thread(target=self.run, name="reelfoundry-engine", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        """Whether the loop thread is running."""
        return self._thread is not None and self._thread.is_alive()

    def wake(self) -> None:
        """Tell the loop that new work may be waiting (called after a submission)."""
        with contextlib.suppress(BlockingIOError):  # the pipe is full: a wake-up is already pending
            os.write(self._wake_w, b"x")

    def stop(self) -> None:
        """Stop the loop and the executor; jobs cut short go back to the queue without using an attempt."""
        self._stop.set()
        self.wake()
        if self._thread is not None:
            self._thread.join(10)
        self.executor.shutdown()
        with self.db.write() as session:
            for row in jobstore.release_node(session, self.node):
                log.info("job %s released at shutdown (now %s)", row.id, row.state)
            self._abandon_own_objects(session)
        _empty(self.work_dir)

    def _abandon_own_objects(self, session: Session) -> None:
        """This node's attempts have stopped (start-up, shutdown): what they left unrecorded is an orphan now. Not
        so with an executor whose tasks write the store themselves (a Ray task may outlive its engine): those
        wait out the grace."""
        if not self.executor.reads_store:
            pendingstore.abandon_node(session, self.node, self.clock.now())

    def run(self) -> None:
        """Loop until stopped; an error in one step is logged and the loop goes on."""
        while not self._stop.is_set():
            try:
                self.step()
            except Exception:
                log.exception("engine step failed")
                time.sleep(self.settings.poll_interval_s)

    # -- the three calls ---------------------------------------------------------------------

    def step(self) -> None:
        """One turn of the loop: schedule → execute → update."""
        units = self.schedule()
        if units:
            self.executor.execute(units)
        timeout = 0.0 if units else self.settings.poll_interval_s
        outputs = self.executor.poll(timeout, wake_fds=(self._wake_r,))
        self._drain_wake()
        self.update_from_output(outputs)
        self._housekeeping()

    def schedule(self) -> list[WorkUnit]:
        """Choose queued jobs for the free slots (the scheduling core decides), claim them, and return what each
        slot runs: one job's WorkItem, or a WorkBatch of compatible jobs."""
        self.idle.tick(busy=len(self._units))
        free = self.executor.free_slots()
        if free <= 0:
            return []
        if self.leader is not None and self.leader.fence is None:
            return []  # a standby: the elected scheduler claims
        with self.db.read() as session:
            queued = self._read_window(session)
        if not queued:
            return []
        now = self.clock.now()
        placements = place_jobs(
            [q.job(i) for i, q in enumerate(queued)],
            node_fleet(self.slot_type, free, self.node),
            now.timestamp(),
            usage=self.fair_share.usage(),
            profiles=self._window.profiles,
            batching=self.batching,
            batch_wait_s=self.settings.batch_wait_s,
        )
        units = []
        for placement in placements:
            unit = self._claim(placement, queued, now)
            if unit is not None:
                units.append(unit)
        return units

    def update_from_output(self, outputs: list[WorkerOutput]) -> None:
        """Record progress and results reported by the executor (the progress of one poll in one transaction)."""
        progress = [out for out in outputs if isinstance(out, Progress)]
        if progress:
            try:
                self._on_progress(progress)
            except Exception:
                # The leases are renewed by housekeeping; only these progress events are lost.
                log.exception("could not record the progress of %d jobs", len(progress))
        for out in outputs:
            if isinstance(out, Progress):
                continue
            try:
                self._on_finished(out)
            except Exception:
                # One output that cannot be recorded (disk full, database gone) must not lose the others;
                # its job keeps its lease and is re-queued when the lease runs out.
                log.exception("could not record %s of job %s", type(out).__name__, out.job_id)
                self._cleanup(out)

    # -- helpers -----------------------------------------------------------------------------

    def _lease_until(self) -> datetime:
        return self.clock.now() + timedelta(seconds=self.settings.lease_s)

    def _read_window(self, session: Session) -> list[_Queued]:
        """The first ``schedule_window`` queued jobs (priority, then age) that are due (no back-off pending),
        each resolved once while it waits."""
        stmt = (
            select(JobRow.id, JobRow.model)
            .where(JobRow.state == JobState.queued.value, jobstore.due(self.clock.now()))
            .order_by(JobRow.priority, JobRow.id)
            .limit(self.settings.schedule_window)
        )
        keys = [(job_id, model) for job_id, model in session.execute(stmt)]
        window = self._window
        missing = [job_id for job_id, model in keys if (job_id, model) not in window.jobs]
        if missing:
            for row in session.scalars(select(JobRow).where(JobRow.id.in_(missing))):
                window.jobs[(row.id, row.model)] = self._describe(session, row)
        wanted = set(keys)
        window.jobs = {k: v for k, v in window.jobs.items() if k in wanted}
        queued = [window.jobs[k] for k in keys if k in window.jobs]
        window.profiles = {q.batch_class: q.profile for q in queued}
        return queued

    def _describe(self, session: Session, row: JobRow) -> _Queued:
        """A queued job as the scheduler sees it: its tenant, class, deadline, size and what it may batch with."""
        constraints: dict[str, Any] = (row.request or {}).get("constraints") or {}
        deadline = constraints.get("deadline_s")
        # A job that cannot run is claimed only to be failed by _prepare, saying why: a class of its own.
        unrunnable = ModelProfile(
            model=row.model,
            weights_gib=0.0,
            act_gib_per_mpf=0.0,
            max_batch=1,
            batch_marginal=1.0,
            speeds={self.slot_type.device: _ANY_SPEED},
            source="unrunnable",
        )
        queued = _Queued(
            job_id=row.id,
            tenant_id=row.tenant_id,
            priority="interactive" if row.priority == jobstore.PRIORITY["interactive"] else "batch",
            created_at=row.created_at,
            deadline_s=float(deadline) if deadline is not None else None,
            batch_class=f"!{row.id}",
            profile=unrunnable,
        )
        if row.kind == finetunestore.KIND:
            return queued  # a class of its own, never batched; _prepare reads what it trains
        try:
            card, params = self._resolve(session, row)
        except ReelFoundryError:
            return queued
        key = batch_class(card, params, row.id)
        return replace(
            queued,
            batch_class=key,
            profile=self._window.profiles.get(key) or profile_for(card, self.slot_type.device),
            num_frames=params.num_frames,
            width=params.width,
            height=params.height,
            steps=params.steps or 1,
        )

    def _claim(self, placement: Placement, queued: list[_Queued], now: datetime) -> WorkUnit | None:
        """Claim a placement's jobs (those still queued) and make the unit one slot runs."""
        chosen = [queued[job.id] for job in placement.jobs]
        # Device-seconds each job is expected to use, for fair share until its worker reports the real figure.
        estimate = placement.runtime_s * placement.share / len(chosen)
        items: list[WorkItem] = []
        fence = self.leader.fence if self.leader is not None else None
        if self.leader is not None and fence is None:
            return None
        try:
            with self.db.write() as session:
                rows = jobstore.claim_ids(
                    session, [q.job_id for q in chosen], self.node, self._lease_until(), now=now, fence=fence
                )
                if not rows:
                    return None
                unit = next(self._unit_ids)
                # The slot was idle until now: its idle time goes to the jobs that end the wait, in equal parts.
                idle = self.idle.take(busy=len(self._units) + 1) if self.rates and self.settings.attribute_idle else 0.0
                for row in rows:
                    self._meter(row, idle / len(rows))
                    item = self._prepare(session, row)
                    if item is not None:
                        items.append(item)
        except leasestore.Deposed as exc:
            assert self.leader is not None and fence is not None
            log.warning("claim refused: %s", exc)
            self.leader.lost(fence)
            for q in chosen:  # nothing of the rolled-back claim stays in this engine's books
                self._running.pop(q.job_id, None)
            return None
        # Inputs are copied once the claim is committed: no transaction waits on the store. An executor whose
        # workers read the store copies them on the node that runs the attempt.
        if not self.executor.reads_store:
            items = [item for item in items if self._stage(item)]
        for item in items:
            state = self._running[item.job_id]
            state.unit = unit
            self.fair_share.start(item.job_id, state.tenant_id, estimate)
        if not items:
            return None
        self._units[unit] = {item.job_id for item in items}
        if len(items) > 1:
            log.info("batch of %d %s jobs on one slot: %s", len(items), items[0].card.id, [i.job_id for i in items])
        return items[0] if len(items) == 1 else WorkBatch(tuple(items))

    def _meter(self, row: JobRow, idle_seconds: float = 0.0) -> None:
        """Stamp the node's rates on a claimed job and charge it the idle time that waited for it."""
        if self.rates is None:
            return
        if row.meter is None:  # a retry keeps the rates of its first attempt: one price per job
            row.meter = self.rates.to_json()
        if self.settings.attribute_idle:
            row.idle_seconds = (row.idle_seconds or 0.0) + idle_seconds

    def _resolve(self, session: Session, row: JobRow) -> tuple[ModelCard, GenerationParams]:
        """The card and parameters a job runs with: those its RoutePlan fixed at admission (for the model it is
        on now, the chosen one or a fallback), never the portfolio's current card, so editing or deleting a card
        does not change queued jobs. Its ``inputs`` are the local paths of the attempt's copies in the work dir
        (``_stage`` makes them once the job is claimed). ReelFoundryError if the job cannot run."""
        request = VideoRequest.model_validate(row.request)
        stored = assetstore.input_keys(session, row.tenant_id, request.inputs)
        inputs = tuple(self._input_path(row.id, row.attempts, i, key) for i, key in enumerate(stored))
        if row.route is None or not row.route_cards or row.model not in row.route_cards:
            # A job queued before routing existed (migration 0007): resolve against the current card.
            card = self.portfolio.card(row.model)
            return card, work_params(request, resolved(resolve_params(card, request)), inputs)
        card = ModelCard.model_validate(row.route_cards[row.model])
        planned = RoutePlan.model_validate(row.route).candidate(row.model).params
        if planned is None:
            raise InvalidParameter("model", f"the route of job {row.id} has no parameters for {row.model}")
        return card, work_params(request, planned, inputs)

    def _input_path(self, job_id: str, attempt: int, index: int, key: str) -> Path:
        """Where the attempt's copy of input ``index`` goes (named like the worker's own files of the attempt, so
        whoever sweeps those sweeps it too)."""
        return self.work_dir / f"{job_id}-{attempt}.input{index}{PurePosixPath(key).suffix}"

    def _stage(self, item: WorkItem) -> bool:
        """Copy the attempt's inputs from the store into the work dir: the worker reads only those, never the store
        (so workers need no shared disk). False when that fails; the job is then failed: re-queued, attempts
        permitting, when the store is unavailable or the copy cannot be written; for good when an input is gone."""
        state = self._running[item.job_id]
        error: ReelFoundryError | None = self._stage_adapter(state)
        retry = error is None or isinstance(error, StorageUnavailable)
        for i, (key, path) in enumerate(state.inputs if error is None else ()):
            try:
                chunks = self.storage.read_range(key)
                with path.open("wb") as fh:
                    for chunk in chunks:
                        fh.write(chunk)
                continue
            except StorageUnavailable as exc:
                error = exc
            except FileNotFoundError as exc:
                if exc.filename is not None and Path(exc.filename) == path:  # the work dir, not the store
                    error = StorageUnavailable(f"could not write input {i} of job {item.job_id}: {exc}")
                else:
                    error, retry = InvalidParameter(f"inputs[{i}]", f"inputs[{i}] is missing from storage"), False
            except Exception as exc:  # the work dir (disk full), or a store error it did not name
                log.exception("job %s: could not copy input %d from storage", item.job_id, i)
                error = StorageUnavailable(f"could not copy input {i} of job {item.job_id}: {exc}")
            break
        if error is None:
            return True
        log.warning("job %s attempt %d: inputs not copied: %s", item.job_id, item.attempt, error.detail)
        self._running.pop(item.job_id, None)
        self._remove_files(item.job_id, item.attempt)
        with self.db.write() as session:
            jobstore.fail(
                session,
                item.job_id,
                item.attempt,
                JobError(type=error.type, detail=error.detail),
                retry=retry,
                storage=self.storage_retry,
                now=self.clock.now(),
            )
            if state.output is not None:  # nothing was written: only the records go
                pendingstore.settle(session, (state.output.video, state.output.poster))
        return False

    def _prepare(self, session: Session, row: JobRow) -> WorkItem | None:
        if row.kind == finetunestore.KIND:
            return self._prepare_finetune(session, row)
        try:
            card, params = self._resolve(session, row)
        except ReelFoundryError as exc:
            jobstore.fail(session, row.id, row.attempts, JobError(type=exc.type, detail=exc.detail), retry=False)
            return None
        # Each input's storage key beside the path its copy gets (``_stage`` copies once the claim is committed).
        stored = assetstore.input_keys(session, row.tenant_id, (row.request or {}).get("inputs") or [])
        staged = tuple(zip(stored, params.inputs, strict=True))
        # The output's keys, recorded as pending in this (the claim's) transaction: whatever the attempt writes
        # under them is deleted again unless the asset that names them is recorded.
        asset_id = new_id()
        output = OutputKeys(
            asset_id, storage_keys.video(row.tenant_id, asset_id), storage_keys.poster(row.tenant_id, asset_id)
        )
        pendingstore.record(
            session,
            (output.video, output.poster),
            job_id=row.id,
            attempt=row.attempts,
            node=self.node,
            now=self.clock.now(),
        )
        card, adapter = adapters.localise(card, self.settings.data_dir / "adapters")
        self._running[row.id] = _Running.of(row, inputs=staged, output=output, adapter=adapter)
        if row.started_at is not None:
            if self.metrics is not None:
                self.metrics.queue_wait.labels(row.model).observe((row.started_at - row.created_at).total_seconds())
            self.tracer.record("job.queue", row.id, row.created_at, row.started_at, model=row.model, node=self.node)
        signing = signing_for(self.credentials, card, row.id, row.request_hash)
        return WorkItem(
            job_id=row.id,
            attempt=row.attempts,
            card=card,
            params=params,
            out_dir=self.work_dir,
            signing=signing,
            energy=self.energy,
            input_keys=tuple(stored),
            output_keys=output,
        )

    def _stage_adapter(self, state: _Running) -> ReelFoundryError | None:
        """Fill this node's adapter cache for the attempt (see :mod:`reelfoundry.assets.adapters`)."""
        return adapters.fetch(self.storage, state.adapter, state.model)

    def _prepare_finetune(self, session: Session, row: JobRow) -> WorkItem | None:
        """A fine-tune's attempt: its base card, the clips training may still read (copied by ``_stage`` like any
        job's inputs) with their captions, and the adapter's settings."""
        finetune = finetunestore.of_job(session, row.id)
        try:
            if finetune is None:
                raise InvalidParameter("finetune", f"job {row.id} has no fine-tune")
            card = self.portfolio.card(finetune.base)
            clips = finetunestore.clips_now(session, finetune, self.clock.now())
            if not clips:
                raise InvalidParameter(
                    "collection", "no asset of the collection may be used for training any more (rights, approval)"
                )
        except ReelFoundryError as exc:
            jobstore.fail(session, row.id, row.attempts, JobError(type=exc.type, detail=exc.detail), retry=False)
            finetunestore.mark(session, row.id, FinetuneState.failed)
            return None
        keys = [asset.storage_key for asset, _ in clips]
        paths = tuple(self._input_path(row.id, row.attempts, i, key) for i, key in enumerate(keys))
        seed = int(finetune.params.get("seed", 0))
        params = GenerationParams(prompt=finetune.name, num_frames=1, fps=1, width=1, height=1, seed=seed, inputs=paths)
        self._running[row.id] = _Running.of(
            row,
            inputs=tuple(zip(keys, paths, strict=True)),
            finetune_id=finetune.id,
            base_card=card,
            trained_on=tuple(asset.id for asset, _ in clips),
        )
        finetunestore.mark(session, row.id, FinetuneState.running)
        spec = FinetuneSpec(
            name=finetune.name,
            rank=int(finetune.params.get("rank", 8)),
            steps=int(finetune.params.get("steps", 300)),
            lr=float(finetune.params.get("lr", 1e-3)),
            seed=seed,
        )
        work = FinetuneWork(finetune.id, spec, tuple(text for _, text in clips), tuple(asset.id for asset, _ in clips))
        return WorkItem(
            job_id=row.id,
            attempt=row.attempts,
            card=card,
            params=params,
            out_dir=self.work_dir,
            energy=self.energy,
            input_keys=tuple(keys),
            finetune=work,
        )

    def _on_progress(self, outs: list[Progress]) -> None:
        """Store progress (at most every ``progress_interval_s`` per job, and the last step) and extend leases."""
        now = self.clock.monotonic()
        due: list[Progress] = []
        for out in outs:
            state = self._running.get(out.job_id)
            if state is None:
                continue
            if out.step < out.total and now - state.last_progress_write < self.settings.progress_interval_s:
                continue
            state.last_progress_write = now
            due.append(out)
        if not due:
            return
        stop: list[str] = []
        with self.db.write() as session:
            lease = self._lease_until()
            for out in due:
                row = jobstore.record_progress(session, out.job_id, out.attempt, out.step, out.total, lease, emit=True)
                if row is None or row.cancel_requested:  # cancelled, or a stale attempt the job moved on from
                    stop.append(out.job_id)
        for job_id in stop:
            self.executor.cancel(job_id)

    def _on_finished(self, out: Finished) -> None:
        state = self._running.pop(out.job_id, None)
        if state is not None:
            in_unit = self._units.get(state.unit)
            if in_unit is not None:
                in_unit.discard(out.job_id)
                if not in_unit:
                    del self._units[state.unit]
        self.idle.tick(busy=len(self._units))  # a slot whose unit has ended is idle from now
        self.fair_share.finish(out.job_id, out.seconds * self.slot_type.share)
        outcome = "succeeded" if out.media is not None else "cancelled" if out.cancelled else "failed"
        if self.metrics is not None and state is not None:
            self.metrics.run_time.labels(state.model, outcome).observe(out.seconds)
        if self.tracer.enabled:
            end = self.clock.now()
            self.tracer.record(
                "job.run",
                out.job_id,
                end - timedelta(seconds=out.seconds),
                end,
                attempt=out.attempt,
                outcome=outcome,
                energy_j=out.energy_j,
                energy_method=out.energy_method,
                error_type=out.error_type,
            )
        if out.artifact is not None and state is not None and state.finetune_id is not None:
            with self.tracer.span("job.store", out.job_id):
                try:
                    self._store_finetune(out, state)
                finally:
                    self._cleanup(out)
            return
        if out.media is not None and (out.video_path is not None or out.stored is not None) and state is not None:
            with self.tracer.span("job.store", out.job_id, bytes=out.media.bytes):
                try:
                    self._store_output(out, state)
                finally:
                    self._cleanup(out)
            return
        with self.db.write() as session:
            if out.cancelled:
                jobstore.mark_cancelled(session, out.job_id, out.attempt, _usage(out))
            else:
                error = JobError(type=out.error_type or "about:blank", detail=out.error_detail or "unknown error")
                jobstore.fail(
                    session,
                    out.job_id,
                    out.attempt,
                    error,
                    retry=out.retryable,
                    usage=_usage(out),
                    health=self.health,
                    storage=self.storage_retry,
                    now=self.clock.now(),
                )
            if state is not None and state.output is not None and not self.executor.reads_store:
                # A local worker never writes the store: nothing to delete, only the records go.
                pendingstore.settle(session, (state.output.video, state.output.poster))
            if state is not None and state.finetune_id is not None:
                _sync_finetune(session, out.job_id)
        if state is not None and state.output is not None and self.executor.reads_store:
            # The task may have written some of the output before it failed (or was lost): delete it now. The keys
            # stay pending until the grace has passed: a task cut off from the cluster may still be alive and put
            # them after this delete; the sweep deletes them again then.
            pendingstore.discard(
                self.db, self.storage, (state.output.video, state.output.poster), self.clock.now(), keep=True
            )
        self._cleanup(out)

    def _store_output(self, out: Finished, state: _Running) -> None:
        """Put the video and poster into the store (unless the worker already did: ``out.stored``) and record the
        asset and the job's success.

        All or nothing: if the store is unavailable the attempt fails with that retryable error (re-queued after
        a back-off, without using an attempt) and whatever was already put is deleted — now, or by the orphan
        sweep once the store is back (the keys were recorded as pending when the job was claimed). No asset row
        points at a missing object, and no object stays that no asset names.
        """
        assert out.media is not None
        output = state.output or OutputKeys(new_id(), "", "")
        if not output.video:  # a unit made before keys were chosen at the claim
            output = OutputKeys(
                output.asset_id,
                storage_keys.video(state.tenant_id, output.asset_id),
                storage_keys.poster(state.tenant_id, output.asset_id),
            )
        video_key = output.video
        if out.stored is not None:
            poster_key = out.stored[1]
        else:
            has_poster = out.poster_path is not None and out.poster_path.exists()
            poster_key = output.poster if has_poster else None
        done = None
        try:
            if out.stored is None:
                assert out.video_path is not None
                self.storage.put_file(video_key, out.video_path, out.media.media_type)
                if poster_key and out.poster_path:
                    self.storage.put_file(poster_key, out.poster_path, "image/jpeg")
            done = self._complete(out, output.asset_id, video_key, poster_key, state, (output.video, output.poster))
        except StorageUnavailable as exc:
            self._not_stored(out, "output", exc)
        finally:
            if done is None:  # not recorded, or a stale attempt the job moved on without
                pendingstore.discard(self.db, self.storage, (output.video, output.poster), self.clock.now())

    def _not_stored(self, out: Finished, what: str, exc: StorageUnavailable) -> None:
        """The attempt's ``what`` could not be put into the store: the attempt fails with that retryable error
        (re-queued after a back-off, without using an attempt)."""
        log.warning("job %s attempt %d: %s not stored: %s", out.job_id, out.attempt, what, exc.detail)
        error = JobError(type=exc.type, detail=f"the {what} could not be stored: {exc.detail}")
        with self.db.write() as session:
            jobstore.fail(
                session,
                out.job_id,
                out.attempt,
                error,
                retry=True,
                usage=_usage(out),
                storage=self.storage_retry,
                now=self.clock.now(),
            )
            _sync_finetune(session, out.job_id)

    def _store_finetune(self, out: Finished, state: _Running) -> None:
        """Put the adapter's files into the store, then in one transaction: the job succeeds, the fine-tune records
        its adapter, and its model card (the base card with the adapter pinned by sha256) joins the portfolio.
        A storage outage re-queues the attempt (as for a video); nothing is left for it either way."""
        assert out.artifact is not None and state.finetune_id is not None and state.base_card is not None
        files = [out.artifact.adapter, *[p for p in out.artifact.files if p != out.artifact.adapter]]
        keys = {p.name: storage_keys.adapter(state.tenant_id, state.finetune_id, p.name) for p in files}
        _, sha256 = file_digest(out.artifact.adapter)
        with self.db.write() as session:  # recorded first: a process that dies after the put leaves no orphan
            pendingstore.record(
                session, keys.values(), job_id=out.job_id, attempt=out.attempt, node=self.node, now=self.clock.now()
            )
        done = None
        registered: ModelCard | None = None
        try:
            for path in files:
                self.storage.put_file(keys[path.name], path, "application/octet-stream")
            with self.db.write() as session:
                done = jobstore.complete_artifact(
                    session, out.job_id, out.attempt, _usage(out), {"finetune_id": state.finetune_id}
                )
                if done is not None:
                    finetune = finetunestore.of_job(session, out.job_id)
                    assert finetune is not None
                    card = finetune_card(
                        state.base_card, finetune.name, keys, out.artifact.adapter.name, sha256, state.tenant_id
                    )
                    registered = card
                    modelstore.add_card(session, card, state.submitted_by, status=modelstore.APPROVED)
                    finetunestore.mark(
                        session,
                        out.job_id,
                        FinetuneState.succeeded,
                        adapter_key=keys[out.artifact.adapter.name],
                        adapter_sha256=sha256,
                        assets_used=list(state.trained_on),  # what it read, not what was chosen at submission
                    )
                    pendingstore.settle(session, keys.values())
        except StorageUnavailable as exc:
            self._not_stored(out, "adapter", exc)
        finally:
            if done is None:
                pendingstore.discard(self.db, self.storage, keys.values(), self.clock.now())
        if done is not None:
            self.portfolio.refresh(self.db, force=True)  # this node names the new model at once (others within 1 s)
            if self.settings.finetune_evaluate and registered is not None:
                references = tuple(key for key, _ in state.inputs if key.endswith(".mp4"))
                thread = threading.Thread(
                    target=self._evaluate_finetune,
                    args=(state.finetune_id, registered, references),
                    name=f"reelfoundry-nres-{state.finetune_id}",
                    daemon=True,
                )
                thread.start()
                self._evaluations.append(thread)

    def _evaluate_finetune(self, finetune_id: str, card: ModelCard, references: tuple[str, ...]) -> None:
        """Run the quick NRES suite on a new fine-tuned model against the clips it was trained on (its collection),
        and keep the result on the fine-tune and as the model's evaluation (the router's quality). In a thread of
        the engine (the suite runs in a child process, which a worker process may not start); a failure is kept
        as the evaluation's ``error``."""
        from reelfoundry.evaluation.nres import SUITE_VERSION, evaluate_model, video_reference

        result: dict[str, Any]
        try:
            local, adapter = adapters.localise(card, self.settings.data_dir / "adapters")
            error = adapters.fetch(self.storage, adapter, card.id)
            if error is not None:
                raise error
            with tempfile.TemporaryDirectory(dir=self.settings.data_dir, prefix=".nres-") as scratch:
                paths = []
                for i, key in enumerate(references[: self.settings.finetune_reference_clips]):
                    path = Path(scratch) / f"reference-{i}.mp4"
                    with path.open("wb") as fh:
                        for chunk in self.storage.read_range(key):
                            fh.write(chunk)
                    paths.append(path)
                reference = video_reference("the fine-tune's collection", paths)
                run = evaluate_model(local, self.settings, "quick", reference=reference)
            result = run.result.to_json()
            with self.db.write() as session:
                modelstore.add_evaluation(session, card.id, "quick", SUITE_VERSION, result)
            self.portfolio.refresh(self.db, force=True)
        except Exception as exc:  # the model is registered either way; the evaluation says why it has no score
            log.warning("NRES evaluation of fine-tune %s (%s) failed: %s", finetune_id, card.id, exc)
            detail = exc.detail if isinstance(exc, ReelFoundryError) else f"{type(exc).__name__}: {exc}"
            result = {"suite": "quick", "suite_version": SUITE_VERSION, "error": detail}
        with self.db.write() as session:
            row = session.get(FinetuneRow, finetune_id)
            if row is not None:
                row.evaluation = result

    def _complete(
        self,
        out: Finished,
        asset_id: str,
        video_key: str,
        poster_key: str | None,
        state: _Running,
        pending: tuple[str, ...] = (),
    ) -> JobRow | None:
        """Record the asset and the job's success (None: a stale attempt); the output's keys stop being pending
        in the same transaction."""
        assert out.media is not None
        media = out.media
        asset = AssetRow(
            id=asset_id,
            tenant_id=state.tenant_id,
            job_id=out.job_id,
            media_type=media.media_type,
            storage_key=video_key,
            poster_key=poster_key,
            bytes=media.bytes,
            sha256=media.sha256,
            duration_s=media.duration_s,
            fps=media.fps,
            width=media.width,
            height=media.height,
            num_frames=media.num_frames,
            codec=media.codec,
            project=state.project,
            campaign=state.campaign,
            created_by=state.submitted_by,
            review_state=ReviewState.pending_review.value,
            created_at=self.clock.now(),
        )
        with self.db.write() as session:
            row = jobstore.complete(session, out.job_id, out.attempt, asset, _usage(out))
            if row is not None:
                pendingstore.settle(session, pending)
            return row

    def _cleanup(self, out: Finished) -> None:
        """Remove the attempt's files from the work dir: its output (if not moved into the store) and inputs."""
        for path in (out.video_path, out.poster_path):
            if path is not None:
                Path(path).unlink(missing_ok=True)
        self._remove_files(out.job_id, out.attempt)

    def _remove_files(self, job_id: str, attempt: int) -> None:
        for path in self.work_dir.glob(f"{job_id}-{attempt}.input*"):
            path.unlink(missing_ok=True)
        shutil.rmtree(adapter_dir(self.work_dir, job_id, attempt), ignore_errors=True)

    def _housekeeping(self) -> None:
        now = self.clock.monotonic()
        if now - self._last_housekeeping < self.settings.poll_interval_s:
            return
        self._last_housekeeping = now
        self.idle.tick(busy=len(self._units))
        if now - self._last_sweep >= _SWEEP_INTERVAL_S and (self.leader is None or self.leader.fence is not None):
            self._last_sweep = now
            try:
                deleted, failed = pendingstore.sweep(
                    self.db, self.storage, grace_s=self.orphan_grace_s, now=self.clock.now()
                )
                if deleted or failed:
                    log.info("orphan sweep: %d objects deleted, %d left for later", deleted, failed)
            except Exception:  # the sweep is tidying: it never stops the loop
                log.exception("orphan sweep failed")
        running = self.executor.running()
        if running:
            with self.db.read() as session:
                stmt = select(JobRow.id).where(JobRow.id.in_(running), JobRow.cancel_requested.is_(True))
                for job_id in session.scalars(stmt):
                    self.executor.cancel(job_id)
        if now - self._last_lease >= self.settings.lease_s / 3:
            self._last_lease = now
            with self.db.write() as session:
                jobstore.renew_leases(session, self.node, running, self._lease_until())
            fence = self.leader.fence if self.leader is not None else None
            if self.leader is not None and fence is None:
                return  # re-queueing other nodes' lost jobs is the elected scheduler's
            try:
                with self.db.write() as session:
                    for row in jobstore.requeue_lost(session, node=None, now=self.clock.now(), fence=fence):
                        log.warning("job %s re-queued: lease of %s expired", row.id, row.worker_node)
            except leasestore.Deposed as exc:
                assert self.leader is not None and fence is not None
                log.warning("re-queue refused: %s", exc)
                self.leader.lost(fence)

    def _drain_wake(self) -> None:
        os.set_blocking(self._wake_r, False)
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass


def _empty(directory: Path) -> None:
    """Remove what is in ``directory`` (files, and the adapter directories of fine-tune attempts)."""
    for leftover in directory.iterdir():
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)


def _sync_finetune(session: Session, job_id: str) -> None:
    """A fine-tune's state follows its job's (re-queued, failed, cancelled)."""
    job = session.get(JobRow, job_id)
    if job is not None:
        finetunestore.mark(session, job_id, FinetuneState(job.state))


def finetune_card(
    base: ModelCard, name: str, keys: dict[str, str], adapter: str, sha256: str, tenant_id: str
) -> ModelCard:
    """The card of a fine-tuned model: the base card under a new id, with its adapter in ``options.lora`` (the
    storage key of each file, the weights' sha256 pinned)."""
    options = dict(base.options)
    options["lora"] = {"key": keys[adapter], "files": dict(keys), "sha256": sha256, "scale": 1.0}
    options["tenant"] = tenant_id  # trained on this tenant's assets: only its requests may use it
    return base.model_copy(update={"id": name, "name": f"{base.name} + LoRA {name}", "options": options})


def _usage(out: Finished) -> jobstore.AttemptUsage:
    """What a finished attempt used, as its worker measured. A vendor's job ran on the vendor's machines: the
    worker only waited, so its time and energy are not charged; the vendor's charge is."""
    if out.vendor is not None:
        return jobstore.AttemptUsage(0.0, 0.0, "vendor", vendor=out.vendor)
    return jobstore.AttemptUsage(out.seconds, out.energy_j, out.energy_method, rates=out.rates)
