"""The Ray executor: each WorkItem or WorkBatch runs as one Ray task on a cluster (``REELFOUNDRY_EXECUTOR=ray``).

A task asks for the custom resource of its device class (``{"device_H100": 1}``, a fraction for a MIG slice or
a slot's share), so Ray places it only on a node that started with that resource; the engine's placement (one
slot type per engine) is then honoured on the cluster. The task runs the worker's own code
(:func:`~reelfoundry.execution.worker.run_item` / ``run_batch``) in a temporary directory of the node it lands on.

No disk is shared between the nodes and the engine: given ``store_settings`` (the engine's storage settings; only
those travel, never the database URL or a secret), the executor ``reads_store``. The task then copies each input
(``WorkItem.input_keys``) from the object store into its temporary directory and runs with ``params.inputs``
pointing there, and puts the video and poster into the store itself under the keys the engine chose at the claim
(``WorkItem.output_keys``), reporting them as ``Finished.stored``. A put that fails deletes what the attempt had
already put and ends the attempt with a retryable ``storage-unavailable`` error. The store is made once per Ray
worker process from those settings (:func:`~reelfoundry.assets.stores.make_store`, the base store: S3, or a
directory); its credentials come from the node's own environment (boto3's chain). Without ``store_settings`` the
engine stages the inputs in its work dir as for local workers (so the nodes need that disk), and then, or for an
item without ``output_keys``, the video and poster come back as task results (bytes) that the driver writes to
the item's ``out_dir``, as a local worker would.

Each attempt is priced where it ran: the task computes the rates of its node
(:func:`~reelfoundry.finops.rates.worker_rates` on the node's own ``REELFOUNDRY_WORKER_*`` environment, that of
the ``ray start`` that started it) with the share of the device the task asked for, and returns them in
``Finished.rates``; a node that cannot price itself returns None (the engine's rates apply) and logs why.

Progress goes to a small reporter actor on the driver's node, which the executor drains on every ``poll``; the
task also tells it, when it starts, the node it runs on and that node's rates, so an attempt lost with its node
is still placed and priced. A cancel is a flag in that actor the task reads at each step boundary (and
``ray.cancel`` past the grace). ``poll`` waits in short slices and returns as soon as a task ends or a wake fd
is readable. A task whose node dies, or that Ray otherwise loses, ends with a *retryable* ``Finished`` error
(``Finished.retryable``): the engine re-queues the job, and the database's attempt fencing keeps it from
finishing twice. Ray's own task retries are off (``max_retries=0``): the database decides about retries.
"""

from __future__ import annotations

import logging
import select
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reelfoundry.errors import BackendError, BadRequest, InvalidParameter, ReelFoundryError
from reelfoundry.execution.executor import Executor
from reelfoundry.execution.messages import Finished, Progress, WorkBatch, WorkerOutput, WorkItem, WorkUnit
from reelfoundry.execution.worker import CANCEL as _CANCEL

if TYPE_CHECKING:
    from reelfoundry.assets.objectstore import ObjectStore
    from reelfoundry.config import Settings

log = logging.getLogger(__name__)

#: Custom resources a unit asks for: a fixed mapping, or one computed per unit.
Resources = Mapping[str, float] | Callable[[WorkUnit], Mapping[str, float]]

_DEVICE_PREFIX = "device_"
#: The settings a task's object store is made from: the only ones that travel to the nodes.
_STORAGE_FIELDS = (
    "data_dir",
    "storage_url",
    "s3_endpoint_url",
    "s3_region",
    "s3_addressing_style",
    "s3_timeout_s",
    "s3_create_bucket",
)
#: How long one wait of ``poll`` lasts before it looks at the wake fds again.
_WAIT_SLICE_S = 0.02


def device_resource(device: str) -> str:
    """The custom resource a node of device class ``device`` offers (``ray start --resources``)."""
    return f"{_DEVICE_PREFIX}{device}"


def storage_settings(settings: Settings) -> Settings:
    """Only the storage part of ``settings`` (the rest at its defaults, nothing read from the environment), with
    an absolute data dir: what a task needs to make the store, and no database URL or secret."""
    from reelfoundry.config import Settings

    values = {name: getattr(settings, name) for name in _STORAGE_FIELDS}
    values["data_dir"] = Path(values["data_dir"]).resolve()
    return Settings.model_construct(**values)


# -- inside the task (on a node) ---------------------------------------------------------------------------------

#: The object stores this Ray worker process made, by their storage settings.
_STORES: dict[tuple[Any, ...], ObjectStore] = {}
#: This node's rates at a device share of 1 (its environment does not change while the process lives).
_NODE_RATES: list[Any] = []


def _store_for(settings: Settings) -> ObjectStore:
    """The base store ``settings`` name (S3 or a directory, never a tiered one), made once per process."""
    from reelfoundry.assets.stores import make_store

    key = tuple(getattr(settings, name) for name in _STORAGE_FIELDS)
    store = _STORES.get(key)
    if store is None:
        store = _STORES[key] = make_store(settings)
    return store


def _node_rates(resources: Mapping[str, float]) -> dict[str, Any] | None:
    """This node's rates (``Rates.to_json()``) from its own environment, with the device share the task asked
    for (its ``device_*`` resource; without one, the node's settings decide). None, logged, if they cannot be
    found: the attempt is then priced at the engine's rates, never failed for it."""
    try:
        from reelfoundry.config import Settings
        from reelfoundry.finops.catalog import load_catalog
        from reelfoundry.finops.meter import parse_share
        from reelfoundry.finops.rates import worker_rates

        if not _NODE_RATES:
            _NODE_RATES.append(worker_rates(Settings(), load_catalog()))
        rates = _NODE_RATES[0]
        asked = [amount for name, amount in resources.items() if name.startswith(_DEVICE_PREFIX)]
        if asked:
            rates = replace(rates, device_share=parse_share(Decimal(str(asked[0]))))
        result: dict[str, Any] = rates.to_json()
        return result
    except Exception:
        log.warning("Ray executor: this node cannot price its attempts; the engine's rates apply", exc_info=True)
        return None


class _Reporter:
    """Ray actor on the driver's node: what the tasks reported, and which jobs were asked to cancel."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.cancelled: set[str] = set()

    def report(self, message: Any) -> None:
        self.messages.append(message)

    def drain(self) -> list[Any]:
        out, self.messages = self.messages, []
        return out

    def cancel(self, job_id: str) -> None:
        self.cancelled.add(job_id)

    def cancels(self, job_ids: list[str]) -> list[str]:
        return [j for j in job_ids if j in self.cancelled]


@dataclass(frozen=True)
class _Placed:
    """A task started on a node (sent before it runs anything): where, and at what rates."""

    jobs: tuple[tuple[str, int], ...]
    node_id: str
    node_ip: str
    rates: dict[str, Any] | None


class _TaskConn:
    """What run_item / run_batch expect of their pipe, inside a Ray task: send goes to the reporter actor (a
    ``Finished`` with the node's rates), poll/recv read the cancels asked for the task's jobs."""

    def __init__(self, reporter: Any, job_ids: list[str], rates: dict[str, Any] | None) -> None:
        self._reporter = reporter
        self._watch = list(job_ids)
        self._pending: list[Any] = []
        self._rates = rates

    def poll(self, timeout: float = 0.0) -> bool:
        import ray

        if not self._pending and self._watch:
            for job_id in ray.get(self._reporter.cancels.remote(self._watch)):
                self._watch.remove(job_id)
                self._pending.append((_CANCEL, job_id))
        return bool(self._pending)

    def recv(self) -> Any:
        return self._pending.pop(0)

    def send(self, message: Any) -> None:
        if isinstance(message, Finished):
            message = replace(message, rates=self._rates)
        self._reporter.report.remote(message)


def _failed(item: WorkItem, error: ReelFoundryError, retryable: bool, started: float) -> Finished:
    return Finished(
        item.job_id,
        item.attempt,
        error_type=error.type,
        error_detail=error.detail,
        seconds=time.monotonic() - started,
        retryable=retryable,
    )


def _stage_inputs(store: ObjectStore | None, item: WorkItem, into: Path, started: float) -> WorkItem | Finished:
    """The item with its inputs copied from the store into ``into`` (each named like its ``params.inputs`` path),
    or the ``Finished`` that ends it: retryable when the store is unavailable, not when an input is gone."""
    from reelfoundry.assets.objectstore import StorageUnavailable

    if not item.input_keys or store is None:  # no store settings: the engine copied them (``reads_store`` False)
        return item
    if len(item.input_keys) != len(item.params.inputs):
        detail = f"{len(item.input_keys)} input keys for {len(item.params.inputs)} inputs"
        return _failed(item, BackendError(detail), False, started)
    into.mkdir(parents=True)
    paths = []
    for i, (key, original) in enumerate(zip(item.input_keys, item.params.inputs, strict=True)):
        path = into / Path(original).name
        try:
            chunks = store.read_range(key)
            with path.open("wb") as fh:
                for chunk in chunks:
                    fh.write(chunk)
        except StorageUnavailable as exc:
            return _failed(item, exc, True, started)
        except FileNotFoundError as exc:
            if exc.filename is not None and Path(exc.filename) == path:  # this node's disk, not the store
                return _failed(item, StorageUnavailable(f"could not write input {i}: {exc}"), True, started)
            return _failed(
                item, InvalidParameter(f"inputs[{i}]", f"inputs[{i}] is missing from storage"), False, started
            )
        except Exception as exc:  # the node's disk (full), or a store error it did not name
            log.exception("job %s: could not copy input %d from storage", item.job_id, i)
            return _failed(item, StorageUnavailable(f"could not copy input {i}: {exc}"), True, started)
        paths.append(path)
    return replace(item, params=replace(item.params, inputs=tuple(paths)))


def _store_outputs(store: ObjectStore, item: WorkItem, f: Finished) -> Finished:
    """Put the attempt's video and poster into the store under its ``output_keys``; on any failure delete what
    was put (best effort) and end the attempt with a retryable storage error instead."""
    from reelfoundry.assets.objectstore import StorageUnavailable, discard

    assert item.output_keys is not None and f.media is not None and f.video_path is not None
    keys = item.output_keys
    tried: list[str] = []
    poster: str | None = None
    try:
        tried.append(keys.video)
        store.put_file(keys.video, f.video_path, f.media.media_type)
        if f.poster_path is not None and f.poster_path.exists():
            tried.append(keys.poster)
            store.put_file(keys.poster, f.poster_path, "image/jpeg")
            poster = keys.poster
    except Exception as exc:
        if not isinstance(exc, StorageUnavailable):
            log.exception("job %s attempt %d: output not stored", item.job_id, item.attempt)
        discard(store, *tried)
        detail = exc.detail if isinstance(exc, ReelFoundryError) else f"{type(exc).__name__}: {exc}"
        return replace(
            f,
            media=None,
            video_path=None,
            poster_path=None,
            error_type=StorageUnavailable.problem_type(),
            error_detail=f"the output could not be stored: {detail}",
            retryable=True,
        )
    return replace(f, video_path=None, poster_path=None, stored=(keys.video, poster))


def _run_unit(
    unit: WorkUnit,
    reporter: Any,
    memory_limit_mb: int,
    store_settings: Settings | None = None,
    resources: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Body of the Ray task: run the unit in a temporary dir of this node, inputs read from and outputs put into
    the object store where the items say so; return the ``Finished`` of each job (with the node's rates) and, for
    outputs not stored, the video's and poster's bytes."""
    import tempfile

    import ray

    from reelfoundry.assets.objectstore import StorageUnavailable
    from reelfoundry.execution import worker

    started = time.monotonic()
    items = unit.items if isinstance(unit, WorkBatch) else (unit,)
    node_id = ray.get_runtime_context().get_node_id()
    node_ip = ray.util.get_node_ip_address()  # type: ignore[no-untyped-call]
    rates = _node_rates(resources or {})
    reporter.report.remote(_Placed(tuple((i.job_id, i.attempt) for i in items), node_id, node_ip, rates))
    reports: list[Finished] = []
    store: ObjectStore | None = None
    if store_settings is not None and any(i.input_keys or i.output_keys for i in items):
        try:
            store = _store_for(store_settings)
        except Exception as exc:  # a bucket that cannot be created, a client that cannot be made
            error = exc if isinstance(exc, StorageUnavailable) else StorageUnavailable(f"{type(exc).__name__}: {exc}")
            reports = [_failed(i, error, True, started) for i in items]
            items = ()
    with tempfile.TemporaryDirectory(prefix="reelfoundry-ray-") as tmp:
        out_dir = Path(tmp)
        runnable: list[WorkItem] = []
        for item in items:
            staged = _stage_inputs(
                store, replace(item, out_dir=out_dir), out_dir / f"{item.job_id}-{item.attempt}", started
            )
            if isinstance(staged, Finished):
                reports.append(staged)
            else:
                runnable.append(staged)
        conn = _TaskConn(reporter, [i.job_id for i in runnable], rates)
        if isinstance(unit, WorkItem) and runnable:
            finished, _ = worker.run_item(conn, runnable[0], {}, memory_limit_mb)  # type: ignore[arg-type]
            reports.append(finished)
        elif runnable:
            done, _ = worker.run_batch(conn, WorkBatch(tuple(runnable)), {}, memory_limit_mb)  # type: ignore[arg-type]
            reports.extend(done)
        by_job = {i.job_id: i for i in runnable}
        results: list[tuple[Finished, bytes | None, bytes | None]] = []
        for report in reports:
            f = replace(report, rates=rates)
            ran = by_job.get(f.job_id)
            produced = f.media is not None and f.video_path is not None and f.error_type is None and not f.cancelled
            if produced and ran is not None and ran.output_keys is not None and store is not None:
                results.append((_store_outputs(store, ran, f), None, None))
                continue
            video = f.video_path.read_bytes() if f.video_path is not None and f.video_path.exists() else None
            poster = f.poster_path.read_bytes() if f.poster_path is not None and f.poster_path.exists() else None
            results.append((f, video, poster))
    return {"node_id": node_id, "node_ip": node_ip, "reports": results}


# -- on the driver (the engine's process) ------------------------------------------------------------------------


@dataclass
class _Task:
    unit: WorkUnit
    ref: Any
    started: float
    jobs: dict[str, WorkItem] = field(default_factory=dict)
    cancel_sent: dict[str, float] = field(default_factory=dict)
    killed: bool = False
    #: The rates of the node the task runs on, once it said (``_Placed``).
    rates: dict[str, Any] | None = None


class RayExecutor(Executor):
    """Runs units as Ray tasks, at most ``slots`` at a time, each asking for ``resources``.

    ``address`` is given to ``ray.init`` (``"auto"``, ``host:port`` or ``ray://host:port``); with token
    authentication (``RAY_AUTH_MODE=token``) the driver needs the cluster's token (``RAY_AUTH_TOKEN`` or
    ``RAY_AUTH_TOKEN_PATH``), as every node does. With ``store_settings`` the tasks read inputs from and write
    outputs to the object store those settings name (``reads_store``); without, outputs come back as bytes.
    """

    reads_store = True

    def __init__(
        self,
        slots: int,
        timeout_s: float,
        resources: Resources,
        address: str | None = None,
        cancel_grace_s: float = 10.0,
        memory_limit_mb: int = 0,
        store_settings: Settings | None = None,
        num_gpus: float = 0.0,
    ) -> None:
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        self._ray = ray
        if not ray.is_initialized():
            ray.init(address=address, log_to_driver=False, ignore_reinit_error=True)
        self._slots = slots
        self._timeout_s = timeout_s
        self._cancel_grace_s = cancel_grace_s
        self._memory_limit_mb = memory_limit_mb
        self._resources = resources
        #: Ray's own GPU resource each task asks for (its share of one): without it Ray hides every GPU from the
        #: task (CUDA_VISIBLE_DEVICES=""), and asking for it makes Ray hand the task its GPU or MIG slice.
        self._num_gpus = num_gpus
        self._store_settings = storage_settings(store_settings) if store_settings is not None else None
        if self._store_settings is None:
            self.reads_store = False  # the tasks cannot reach the store: the engine stages and stores
        here = ray.get_runtime_context().get_node_id()
        # The reporter lives on the driver's node: a worker node that dies takes no progress or cancel with it.
        self._reporter: Any = (
            ray.remote(num_cpus=0)(_Reporter)
            .options(scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False))
            .remote()
        )
        self._remote = ray.remote(_run_unit)
        self._tasks: list[_Task] = []
        #: Units refused at once, reported by the next poll.
        self._refused: list[Finished] = []
        #: Where each job's attempt ran, by job id (node id, node ip): for logs and tests.
        self.placements: dict[str, tuple[str, str]] = {}

    def _resources_for(self, unit: WorkUnit) -> dict[str, float]:
        res = self._resources(unit) if callable(self._resources) else self._resources
        return dict(res)

    def free_slots(self) -> int:
        return max(0, self._slots - len(self._tasks))

    def running(self) -> list[str]:
        return [job_id for task in self._tasks for job_id in task.jobs]

    def execute(self, items: Sequence[WorkUnit]) -> None:
        for unit in items:
            if isinstance(unit, WorkItem) and unit.finetune is not None:
                # The adapter a task would write stays on its node: fine-tunes run on local workers for now.
                detail = "fine-tunes run on local workers (REELFOUNDRY_EXECUTOR=local), not on the Ray executor yet"
                self._refused.append(
                    Finished(unit.job_id, unit.attempt, error_type=BadRequest.problem_type(), error_detail=detail)
                )
                continue
            resources = self._resources_for(unit)
            ref = self._remote.options(
                num_cpus=0, num_gpus=self._num_gpus, resources=resources, max_retries=0, retry_exceptions=False
            ).remote(unit, self._reporter, self._memory_limit_mb, self._store_settings, resources)
            jobs = unit.items if isinstance(unit, WorkBatch) else (unit,)
            self._tasks.append(_Task(unit, ref, time.monotonic(), {i.job_id: i for i in jobs}))

    def cancel(self, job_id: str) -> None:
        for task in self._tasks:
            if job_id in task.jobs and job_id not in task.cancel_sent:
                task.cancel_sent[job_id] = time.monotonic()
                self._reporter.cancel.remote(job_id)

    def _wait(self, timeout: float, wake_fds: tuple[int, ...]) -> None:
        """Until a task ends, a wake fd is readable (not drained: the engine does) or ``timeout`` passes."""
        deadline = time.monotonic() + max(timeout, 0.0)
        refs = [t.ref for t in self._tasks]
        fds = list(wake_fds)
        while True:
            left = deadline - time.monotonic()
            if not refs:
                if fds or left > 0:
                    select.select(fds, [], [], max(left, 0.0))
                return
            if fds and select.select(fds, [], [], 0)[0]:
                return
            if left <= 0:
                return
            ready, _ = self._ray.wait(refs, num_returns=1, timeout=min(left, _WAIT_SLICE_S))
            if ready:
                return

    def poll(self, timeout: float, wake_fds: tuple[int, ...] = ()) -> list[WorkerOutput]:
        ray = self._ray
        self._wait(timeout, wake_fds)
        outputs: list[WorkerOutput] = [*self._refused]
        self._refused.clear()
        try:
            messages = ray.get(self._reporter.drain.remote(), timeout=30)
        except Exception:  # the reporter is on the driver's node; if it is gone, results still come
            log.exception("Ray executor: could not read progress")
            messages = []
        for msg in messages:
            if isinstance(msg, _Placed):
                self._placed(msg)
                continue
            task = self._task_of(msg.job_id)
            if task is None or msg.attempt != task.jobs[msg.job_id].attempt:
                continue
            if isinstance(msg, Finished):
                task.jobs.pop(msg.job_id, None)
            outputs.append(msg)
        now = time.monotonic()
        for task in list(self._tasks):
            ready, _ = ray.wait([task.ref], timeout=0)
            if ready:
                outputs.extend(self._collect(task))
                self._tasks.remove(task)
                continue
            all_cancelled = task.jobs and all(j in task.cancel_sent for j in task.jobs)
            if all_cancelled and now - max(task.cancel_sent[j] for j in task.jobs) > self._cancel_grace_s:
                outputs.extend(self._abandon(task, None))
            elif now - task.started > self._timeout_s:
                detail = f"backend exceeded the job timeout of {self._timeout_s:g} s and was killed"
                outputs.extend(self._abandon(task, detail))
        return outputs

    def _placed(self, msg: _Placed) -> None:
        """A task said where it runs: record it for its jobs (those of this attempt)."""
        for job_id, attempt in msg.jobs:
            task = self._task_of(job_id)
            if task is None or task.jobs[job_id].attempt != attempt:
                continue
            task.rates = msg.rates
            self.placements[job_id] = (msg.node_id, msg.node_ip)
            log.info("Ray executor: job %s attempt %d runs on node %s (%s)", job_id, attempt, msg.node_ip, msg.node_id)

    def _task_of(self, job_id: str) -> _Task | None:
        return next((t for t in self._tasks if job_id in t.jobs), None)

    def _collect(self, task: _Task) -> list[Finished]:
        ray = self._ray
        seconds = time.monotonic() - task.started
        try:
            result = ray.get(task.ref)
        except Exception as exc:  # the node died, the worker crashed, the task was cancelled
            lost = not isinstance(exc, ray.exceptions.TaskCancelledError)
            detail = f"the Ray task was lost ({type(exc).__name__}): {str(exc).splitlines()[0] if str(exc) else ''}"
            log.warning("Ray executor: %s (jobs %s)", detail, ", ".join(task.jobs))
            ended = _end(task, seconds, detail, retryable=lost)
            task.jobs.clear()
            return ended
        ended = []
        for f, video, poster in result["reports"]:
            if f.job_id not in task.jobs or task.jobs[f.job_id].attempt != f.attempt:
                continue
            work = task.jobs.pop(f.job_id)
            self.placements[f.job_id] = (result["node_id"], result["node_ip"])
            kw: dict[str, Any] = {}
            if video is not None and f.video_path is not None:
                path = work.out_dir / f.video_path.name
                path.write_bytes(video)
                kw["video_path"] = path
            if poster is not None and f.poster_path is not None:
                path = work.out_dir / f.poster_path.name
                path.write_bytes(poster)
                kw["poster_path"] = path
            elif f.poster_path is not None:
                kw["poster_path"] = None
            ended.append(replace(f, **kw))
        return ended

    def _abandon(self, task: _Task, error: str | None) -> list[Finished]:
        """Cancel the task (forcefully) and end its remaining jobs now: cancelled, or failed with ``error``."""
        self._ray.cancel(task.ref, force=True)
        self._tasks.remove(task)
        ended = _end(task, time.monotonic() - task.started, error)
        task.jobs.clear()
        return ended

    def shutdown(self) -> None:
        for task in self._tasks:
            self._ray.cancel(task.ref, force=True)
        self._tasks.clear()
        self._ray.kill(self._reporter)


def _end(task: _Task, seconds: float, error: str | None, *, retryable: bool = False) -> list[Finished]:
    """End a task's remaining jobs, each with its share of ``seconds``: cancelled (asked to, or no ``error``),
    else failed with ``error`` as a backend error (``retryable`` when the task was lost with its node)."""
    share = seconds / max(len(task.jobs), 1)
    ended = []
    for job_id, item in task.jobs.items():
        if error is None or job_id in task.cancel_sent:
            ended.append(Finished(job_id, item.attempt, cancelled=True, seconds=share, rates=task.rates))
        else:
            ended.append(
                Finished(
                    job_id,
                    item.attempt,
                    error_type=BackendError.problem_type(),
                    error_detail=error,
                    seconds=share,
                    retryable=retryable,
                    rates=task.rates,
                )
            )
    return ended


__all__ = ["Progress", "RayExecutor", "device_resource", "storage_settings"]
