"""The engine: claims jobs, hands them to an executor, records what comes back.

The loop is three calls, as in vLLM's engine core::

    items = self.schedule()                     # claim queued jobs for free slots
    outputs = self.executor... execute / poll   # run them, collect progress and results
    self.update_from_output(outputs)            # write states, assets and events

The database is the only shared state, so a crash anywhere loses nothing: on
start the engine re-queues the jobs this node was running.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from reelfoundry.assets.storage import LocalStorage
from reelfoundry.config import Settings
from reelfoundry.errors import InvalidParameter, ReelFoundryError
from reelfoundry.execution.executor import Executor
from reelfoundry.execution.messages import Finished, Progress, WorkerOutput, WorkItem
from reelfoundry.finops.energy import EnergySpec
from reelfoundry.finops.meter import IdleLedger, Rates
from reelfoundry.ids import new_id
from reelfoundry.observability.metrics import Metrics
from reelfoundry.observability.tracing import Tracer
from reelfoundry.portfolio.base import GenerationParams
from reelfoundry.portfolio.registry import Portfolio
from reelfoundry.routing import resolve_params
from reelfoundry.routing.state import work_params
from reelfoundry.provenance.credentials import SigningCredentials
from reelfoundry.provenance.manifest import signing_for
from reelfoundry.schema import JobError, ModelCard, ResolvedParams, ReviewState, RoutePlan, VideoRequest
from reelfoundry.store import Database
from reelfoundry.store import assets as assetstore
from reelfoundry.store import jobs as jobstore
from reelfoundry.store.tables import AssetRow, JobRow, utcnow

log = logging.getLogger(__name__)


@dataclass
class _Running:
    tenant_id: str
    project: str | None
    campaign: str | None
    submitted_by: str | None
    model: str = ""
    last_progress_write: float = 0.0


class Engine:
    """Drives jobs from queued to a final state on this node."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        portfolio: Portfolio,
        storage: LocalStorage,
        executor: Executor,
        node: str,
        credentials: SigningCredentials,
        rates: Rates | None = None,
        metrics: Metrics | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self.settings = settings
        #: What the node's device costs; each claimed job keeps a copy, so its price never drifts.
        self.rates = rates
        #: What workers need to measure each attempt's energy (the same for every job on this node).
        self.energy = EnergySpec(rates.device, float(rates.device_share), float(rates.tdp_w)) if rates else None
        self.idle = IdleLedger(settings.worker_slots)
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
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._thread: threading.Thread | None = None
        self._last_housekeeping = 0.0
        self._last_lease = 0.0

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Re-queue what this node left running, then run the loop in a thread."""
        for leftover in self.work_dir.iterdir():  # half-written output of attempts a crash cut short
            leftover.unlink(missing_ok=True)
        with self.db.write() as session:
            for row in jobstore.requeue_lost(session, node=self.node):
                log.info("job %s re-queued after restart (state %s)", row.id, row.state)
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
        for leftover in self.work_dir.iterdir():
            leftover.unlink(missing_ok=True)

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
        items = self.schedule()
        if items:
            self.executor.execute(items)
        timeout = 0.0 if items else self.settings.poll_interval_s
        outputs = self.executor.poll(timeout, wake_fds=(self._wake_r,))
        self._drain_wake()
        self.update_from_output(outputs)
        self._housekeeping()

    def schedule(self) -> list[WorkItem]:
        """Claim queued jobs, highest priority and oldest first, for the free slots."""
        items: list[WorkItem] = []
        self.idle.tick(busy=len(self._running))
        for _ in range(self.executor.free_slots()):
            with self.db.write() as session:
                row = jobstore.claim_next(session, self.node, jobstore.lease_deadline(self.settings.lease_s))
                if row is None:
                    break
                self._meter(row)
                item = self._prepare(session, row)
            if item is not None:
                items.append(item)
        return items

    def update_from_output(self, outputs: list[WorkerOutput]) -> None:
        """Record progress and results reported by the executor."""
        for out in outputs:
            try:
                if isinstance(out, Progress):
                    self._on_progress(out)
                else:
                    self._on_finished(out)
            except Exception:
                # One output that cannot be recorded (disk full, database gone) must not lose the others;
                # its job keeps its lease and is re-queued when the lease runs out.
                log.exception("could not record %s of job %s", type(out).__name__, out.job_id)
                if isinstance(out, Finished):
                    self._cleanup(out)

    # -- helpers -----------------------------------------------------------------------------

    def _meter(self, row: JobRow) -> None:
        """Stamp the node's rates on a claimed job and charge it the idle time that waited for it."""
        if self.rates is None:
            return
        if row.meter is None:  # a retry keeps the rates of its first attempt: one price per job
            row.meter = self.rates.to_json()
        if self.settings.attribute_idle:
            # The slot being claimed is busy from now on.
            row.idle_seconds = (row.idle_seconds or 0.0) + self.idle.take(busy=len(self._running) + 1)

    def _resolve(self, session: Session, row: JobRow) -> tuple[ModelCard, GenerationParams]:
        """The card and parameters a job runs with: those its RoutePlan fixed at admission (for the model it is
        on now, the chosen one or a fallback), never the portfolio's current card, so editing or deleting a card
        does not change queued jobs. ReelFoundryError if the job cannot run."""
        request = VideoRequest.model_validate(row.request)
        keys = assetstore.input_keys(session, row.tenant_id, request.inputs)
        inputs = tuple(self.storage.path(k) for k in keys)
        if row.route is None or not row.route_cards or row.model not in row.route_cards:
            # A job queued before routing existed (migration 0007): resolve against the current card.
            card = self.portfolio.card(row.model)
            return card, work_params(request, ResolvedParams(**_legacy_params(card, request)), inputs)
        card = ModelCard.model_validate(row.route_cards[row.model])
        resolved = RoutePlan.model_validate(row.route).candidate(row.model).params
        if resolved is None:
            raise InvalidParameter("model", f"the route of job {row.id} has no parameters for {row.model}")
        return card, work_params(request, resolved, inputs)

    def _prepare(self, session: Session, row: JobRow) -> WorkItem | None:
        try:
            card, params = self._resolve(session, row)
        except ReelFoundryError as exc:
            jobstore.fail(session, row.id, row.attempts, JobError(type=exc.type, detail=exc.detail), retry=False)
            return None
        self._running[row.id] = _Running(row.tenant_id, row.project, row.campaign, row.submitted_by, row.model)
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
        )

    def _on_progress(self, out: Progress) -> None:
        state = self._running.get(out.job_id)
        if state is None:
            return
        now = time.monotonic()
        if out.step < out.total and now - state.last_progress_write < self.settings.progress_interval_s:
            return
        state.last_progress_write = now
        with self.db.write() as session:
            row = jobstore.record_progress(
                session,
                out.job_id,
                out.attempt,
                out.step,
                out.total,
                jobstore.lease_deadline(self.settings.lease_s),
                emit=True,
            )
        if row is None or row.cancel_requested:  # cancelled, or a stale attempt the job moved on from
            self.executor.cancel(out.job_id)

    def _on_finished(self, out: Finished) -> None:
        state = self._running.pop(out.job_id, None)
        self.idle.tick(busy=len(self._running))  # its slot is idle from now
        outcome = "succeeded" if out.media is not None else "cancelled" if out.cancelled else "failed"
        if self.metrics is not None and state is not None:
            self.metrics.run_time.labels(state.model, outcome).observe(out.seconds)
        if self.tracer.enabled:
            end = utcnow()
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
        if out.media is not None and out.video_path is not None and state is not None:
            with self.tracer.span("job.store", out.job_id, bytes=out.media.bytes):
                self._store_output(out, state)
            return
        with self.db.write() as session:
            if out.cancelled:
                jobstore.mark_cancelled(session, out.job_id, out.attempt, _usage(out))
            else:
                error = JobError(type=out.error_type or "about:blank", detail=out.error_detail or "unknown error")
                jobstore.fail(session, out.job_id, out.attempt, error, retry=False, usage=_usage(out))
        self._cleanup(out)

    def _store_output(self, out: Finished, state: _Running) -> None:
        assert out.media is not None and out.video_path is not None
        asset_id = new_id()
        video_key = f"{state.tenant_id}/{asset_id}.mp4"
        poster_key = f"{state.tenant_id}/{asset_id}.jpg" if out.poster_path and out.poster_path.exists() else None
        self.storage.put_file(video_key, out.video_path)
        if poster_key and out.poster_path:
            self.storage.put_file(poster_key, out.poster_path)
        done = None
        try:
            done = self._complete(out, asset_id, video_key, poster_key, state)
        finally:
            if done is None:  # not recorded, or a stale attempt the job moved on without
                self.storage.delete(video_key)
                if poster_key:
                    self.storage.delete(poster_key)

    def _complete(
        self, out: Finished, asset_id: str, video_key: str, poster_key: str | None, state: _Running
    ) -> JobRow | None:
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
            created_at=utcnow(),
        )
        with self.db.write() as session:
            return jobstore.complete(session, out.job_id, out.attempt, asset, _usage(out))

    def _cleanup(self, out: Finished) -> None:
        for path in (out.video_path, out.poster_path):
            if path is not None:
                Path(path).unlink(missing_ok=True)

    def _housekeeping(self) -> None:
        now = time.monotonic()
        if now - self._last_housekeeping < self.settings.poll_interval_s:
            return
        self._last_housekeeping = now
        self.idle.tick(busy=len(self._running))
        running = self.executor.running()
        if running:
            with self.db.read() as session:
                stmt = select(JobRow.id).where(JobRow.id.in_(running), JobRow.cancel_requested.is_(True))
                for job_id in session.scalars(stmt):
                    self.executor.cancel(job_id)
        if now - self._last_lease >= self.settings.lease_s / 3:
            self._last_lease = now
            with self.db.write() as session:
                jobstore.renew_leases(session, self.node, running, jobstore.lease_deadline(self.settings.lease_s))
                for row in jobstore.requeue_lost(session, node=None):
                    log.warning("job %s re-queued: lease of %s expired", row.id, row.worker_node)

    def _drain_wake(self) -> None:
        os.set_blocking(self._wake_r, False)
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass


def _usage(out: Finished) -> jobstore.AttemptUsage:
    """What a finished attempt used, as its worker measured. A vendor's job ran on the vendor's machines: the
    worker only waited, so its time and energy are not charged; the vendor's charge is."""
    if out.vendor is not None:
        return jobstore.AttemptUsage(0.0, 0.0, "vendor", vendor=out.vendor)
    return jobstore.AttemptUsage(out.seconds, out.energy_j, out.energy_method)


def _legacy_params(card: ModelCard, request: VideoRequest) -> dict[str, object]:
    p = resolve_params(card, request)
    return dict(
        num_frames=p.num_frames,
        fps=p.fps,
        width=p.width,
        height=p.height,
        seed=p.seed,
        steps=p.steps,
        guidance_scale=p.guidance_scale,
    )
