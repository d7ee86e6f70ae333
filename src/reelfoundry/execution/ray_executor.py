"""The Ray executor: each WorkItem or WorkBatch runs as one Ray task on a cluster (``REELFOUNDRY_EXECUTOR=ray``).

A task asks for the custom resource of its device class (``{"device_H100": 1}``, a fraction for a MIG slice or
a slot's share), so Ray places it only on a node that started with that resource; the engine's placement (one
slot type per engine) is then honoured on the cluster. The task runs the worker's own code
(:func:`~reelfoundry.execution.worker.run_item` / ``run_batch``) in a temporary directory of the node it lands on
and returns the produced video and poster as bytes; the driver writes them where a local worker would have, so the
engine stores them as usual (no shared disk between the nodes and the engine).

Progress goes to a small reporter actor on the driver's node, which the executor drains on every ``poll``;
a cancel is a flag in that actor the task reads at each step boundary (and ``ray.cancel`` past the grace).
A task whose node dies, or that Ray otherwise loses, ends with a *retryable* ``Finished`` error
(``Finished.retryable``): the engine re-queues the job, and the database's attempt fencing keeps it from
finishing twice. Ray's own task retries are off (``max_retries=0``): the database decides about retries.

Not done: inputs (image/video conditioning files) are staged by the engine in its work dir and are not shipped
to the task, so jobs with inputs need that dir on the node; metering uses the engine's rates, those of the device
class the task was pinned to (the node each attempt ran on is logged, not priced separately).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from reelfoundry.errors import BackendError
from reelfoundry.execution.executor import Executor
from reelfoundry.execution.messages import Finished, Progress, WorkBatch, WorkerOutput, WorkItem, WorkUnit
from reelfoundry.execution.worker import CANCEL as _CANCEL

log = logging.getLogger(__name__)

#: Custom resources a unit asks for: a fixed mapping, or one computed per unit.
Resources = Mapping[str, float] | Callable[[WorkUnit], Mapping[str, float]]


def device_resource(device: str) -> str:
    """The custom resource a node of device class ``device`` offers (``ray start --resources``)."""
    return f"device_{device}"


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


class _TaskConn:
    """What run_item / run_batch expect of their pipe, inside a Ray task: send goes to the reporter actor,
    poll/recv read the cancels asked for the task's jobs."""

    def __init__(self, reporter: Any, job_ids: list[str]) -> None:
        self._reporter = reporter
        self._watch = list(job_ids)
        self._pending: list[Any] = []

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
        self._reporter.report.remote(message)


def _run_unit(unit: WorkUnit, reporter: Any, memory_limit_mb: int) -> dict[str, Any]:
    """Body of the Ray task: run the unit in a temporary dir of this node; return its reports and files."""
    import tempfile

    import ray

    from reelfoundry.execution import worker

    with tempfile.TemporaryDirectory(prefix="reelfoundry-ray-") as tmp:
        out_dir = Path(tmp)
        if isinstance(unit, WorkItem):
            local: WorkUnit = replace(unit, out_dir=out_dir)
        else:
            local = WorkBatch(tuple(replace(i, out_dir=out_dir) for i in unit.items))
        items = local.items if isinstance(local, WorkBatch) else (local,)
        conn = _TaskConn(reporter, [i.job_id for i in items])
        if isinstance(local, WorkItem):
            finished, _ = worker.run_item(conn, local, {}, memory_limit_mb)  # type: ignore[arg-type]
            reports = [finished]
        else:
            reports, _ = worker.run_batch(conn, local, {}, memory_limit_mb)  # type: ignore[arg-type]
        results = []
        for f in reports:
            video = f.video_path.read_bytes() if f.video_path is not None and f.video_path.exists() else None
            poster = f.poster_path.read_bytes() if f.poster_path is not None and f.poster_path.exists() else None
            results.append((f, video, poster))
    node_ip = ray.util.get_node_ip_address()  # type: ignore[no-untyped-call]
    return {"node_id": ray.get_runtime_context().get_node_id(), "node_ip": node_ip, "reports": results}


@dataclass
class _Task:
    unit: WorkUnit
    ref: Any
    started: float
    jobs: dict[str, WorkItem] = field(default_factory=dict)
    cancel_sent: dict[str, float] = field(default_factory=dict)
    killed: bool = False


class RayExecutor(Executor):
    """Runs units as Ray tasks, at most ``slots`` at a time, each asking for ``resources``.

    ``address`` is given to ``ray.init`` (``"auto"``, ``host:port`` or ``ray://host:port``); with token
    authentication (``RAY_AUTH_MODE=token``) the driver needs the cluster's token (``RAY_AUTH_TOKEN`` or
    ``RAY_AUTH_TOKEN_PATH``), as every node does.
    """

    def __init__(
        self,
        slots: int,
        timeout_s: float,
        resources: Resources,
        address: str | None = None,
        cancel_grace_s: float = 10.0,
        memory_limit_mb: int = 0,
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
        here = ray.get_runtime_context().get_node_id()
        # The reporter lives on the driver's node: a worker node that dies takes no progress or cancel with it.
        self._reporter: Any = (
            ray.remote(num_cpus=0)(_Reporter)
            .options(scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False))
            .remote()
        )
        self._remote = ray.remote(_run_unit)
        self._tasks: list[_Task] = []
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
            ref = self._remote.options(
                num_cpus=0, resources=self._resources_for(unit), max_retries=0, retry_exceptions=False
            ).remote(unit, self._reporter, self._memory_limit_mb)
            jobs = unit.items if isinstance(unit, WorkBatch) else (unit,)
            self._tasks.append(_Task(unit, ref, time.monotonic(), {i.job_id: i for i in jobs}))

    def cancel(self, job_id: str) -> None:
        for task in self._tasks:
            if job_id in task.jobs and job_id not in task.cancel_sent:
                task.cancel_sent[job_id] = time.monotonic()
                self._reporter.cancel.remote(job_id)

    def poll(self, timeout: float, wake_fds: tuple[int, ...] = ()) -> list[WorkerOutput]:
        ray = self._ray
        refs = [t.ref for t in self._tasks]
        if refs:
            ray.wait(refs, num_returns=1, timeout=timeout)
        elif timeout > 0:
            import select

            select.select(list(wake_fds), [], [], timeout)
        outputs: list[WorkerOutput] = []
        try:
            messages = ray.get(self._reporter.drain.remote(), timeout=30)
        except Exception:  # the reporter is on the driver's node; if it is gone, results still come
            log.exception("Ray executor: could not read progress")
            messages = []
        for msg in messages:
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
            share = seconds / max(len(task.jobs), 1)
            ended = []
            for job_id, item in task.jobs.items():
                if job_id in task.cancel_sent:
                    ended.append(Finished(job_id, item.attempt, cancelled=True, seconds=share))
                else:
                    ended.append(
                        Finished(
                            job_id,
                            item.attempt,
                            error_type=BackendError.problem_type(),
                            error_detail=detail,
                            seconds=share,
                            retryable=lost,
                        )
                    )
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
        share = (time.monotonic() - task.started) / max(len(task.jobs), 1)
        ended = []
        for job_id, item in task.jobs.items():
            if error is None or job_id in task.cancel_sent:
                ended.append(Finished(job_id, item.attempt, cancelled=True, seconds=share))
            else:
                ended.append(
                    Finished(
                        job_id, item.attempt, error_type=BackendError.problem_type(), error_detail=error, seconds=share
                    )
                )
        task.jobs.clear()
        return ended

    def shutdown(self) -> None:
        for task in self._tasks:
            self._ray.cancel(task.ref, force=True)
        self._tasks.clear()
        self._ray.kill(self._reporter)


__all__ = ["Progress", "RayExecutor", "device_resource"]
