"""Worker memory limits: a job that needs more than its worker may hold fails saying so, and the next job runs."""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Iterator
from pathlib import Path

import pytest
from faulty_backend import CARD as FAULTY_CARD

from reelfoundry.errors import BackendError, InvalidParameter
from reelfoundry.execution.executor import LocalExecutor
from reelfoundry.execution.messages import Finished, WorkItem
from reelfoundry.execution.worker import OUT_OF_MEMORY_EXIT, run_item
from reelfoundry.portfolio.base import Backend, GenerationOutput, GenerationParams, StepCallback
from reelfoundry.schema import ModelCard

#: Small enough to reach quickly, large enough for an idle worker (about 140 MiB of data, 40 MiB resident).
LIMIT_MB = 256
CLEAR = f"the job needed more memory than the worker's limit of {LIMIT_MB} MiB (REELFOUNDRY_WORKER_MEMORY_LIMIT_MB)"
CARD = ModelCard.model_validate(FAULTY_CARD)


def _item(tmp_path: Path, job_id: str, prompt: str) -> WorkItem:
    params = GenerationParams(prompt=prompt, num_frames=8, fps=8, width=64, height=64, seed=1)
    return WorkItem(job_id=job_id, attempt=1, card=CARD, params=params, out_dir=tmp_path)


def _run(executor: LocalExecutor, item: WorkItem) -> Finished:
    """Run one item to its end; the executor's own job timeout bounds the wait."""
    executor.execute([item])
    while True:
        for out in executor.poll(0.1):
            if isinstance(out, Finished) and out.job_id == item.job_id:
                return out


@pytest.fixture
def executor() -> Iterator[LocalExecutor]:
    pool = LocalExecutor(1, timeout_s=60, cancel_grace_s=2, memory_limit_mb=LIMIT_MB)
    yield pool
    pool.shutdown()


@pytest.mark.parametrize(
    "prompt",
    [f"hog:{LIMIT_MB * 2}", f"hog-shared:{LIMIT_MB * 2}", f"crash:{OUT_OF_MEMORY_EXIT}"],
    ids=["allocation-refused", "killed-by-the-watchdog", "died-out-of-memory"],
)
def test_a_job_over_the_limit_fails_saying_so_and_the_next_runs_on_a_fresh_worker(
    executor: LocalExecutor, tmp_path: Path, prompt: str
) -> None:
    first_worker = executor._slots[0].process.pid

    hog = _run(executor, _item(tmp_path, "hog", prompt))
    fine = _run(executor, _item(tmp_path, "fine", "fine"))

    assert hog.error_type == BackendError.problem_type()
    assert hog.error_detail == CLEAR
    assert executor._slots[0].process.pid != first_worker  # replaced, not reused with a fragmented heap
    assert fine.error_detail is None and fine.media is not None


def test_a_job_within_the_limit_keeps_its_worker(executor: LocalExecutor, tmp_path: Path) -> None:
    first_worker = executor._slots[0].process.pid

    done = _run(executor, _item(tmp_path, "modest", f"hog:{LIMIT_MB // 4}"))

    assert done.error_detail is None and done.media is not None
    assert executor._slots[0].process.pid == first_worker


class _Failing(Backend):
    """Raises the error it is given, in place of generating."""

    name = "failing"

    def __init__(self, card: ModelCard, error: Exception) -> None:
        super().__init__(card)
        self.error = error

    def generate(self, params: GenerationParams, callback: StepCallback | None = None) -> GenerationOutput:
        raise self.error


def _chained() -> Exception:
    try:
        raise MemoryError
    except MemoryError as exc:
        try:
            raise InvalidParameter("inputs", "inputs[0] (big.png) is not a readable image") from exc
        except InvalidParameter as outer:
            return outer


@pytest.mark.parametrize(
    "error",
    [
        MemoryError(),
        RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 8589934592 bytes."),
        OSError(12, "Cannot allocate memory"),
        _chained(),
    ],
    ids=["MemoryError", "torch-cpu-allocator", "ENOMEM", "raised-from-MemoryError"],
)
@pytest.mark.parametrize("limit_mb", [0, LIMIT_MB])
def test_running_out_of_memory_in_a_backend_is_reported_plainly_and_retires_the_worker(
    tmp_path: Path, error: Exception, limit_mb: int
) -> None:
    ours, _ = mp.Pipe()
    item = _item(tmp_path, "job", "anything")

    finished, retire = run_item(ours, item, {CARD.id: _Failing(CARD, error)}, limit_mb)

    assert retire
    assert finished.error_type == BackendError.problem_type()
    assert finished.error_detail == (
        CLEAR
        if limit_mb
        else "the job ran out of memory: the machine had none left (the worker has no limit of its own)"
    )


def test_other_backend_errors_keep_their_detail_and_the_worker(tmp_path: Path) -> None:
    ours, _ = mp.Pipe()
    item = _item(tmp_path, "job", "anything")

    finished, retire = run_item(ours, item, {CARD.id: _Failing(CARD, RuntimeError("bad weights"))}, LIMIT_MB)

    assert not retire
    assert finished.error_detail == "backend 'faulty_backend:FaultyBackend' raised RuntimeError: bad weights"
