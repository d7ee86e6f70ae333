"""Runs a suite's generations through a model's backend in a child process, and measures them.

The child (``multiprocessing`` spawn, as the workers are started) builds the backend from the card, runs each
item through :func:`~reelfoundry.execution.produce.produce` (the same check → generate → encode path a job
takes, without signing) and reports, per clip, the MP4 it wrote and the seconds it took; for the run, the
backend's set-up time, the peak memory, the energy and any network attempt. A child because:

- peak memory is the child's own high-water mark, not the CLI's (which has loaded other things);
- the network guard (:mod:`reelfoundry.evaluation.netguard`) is an audit hook, which cannot be removed once
  installed: it must live in a process that ends with the run;
- a backend that crashes, hangs or exits takes down only the child; the parent reports it.

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` (the device's); otherwise the process's resident-set
high-water mark (``getrusage(RUSAGE_SELF).ru_maxrss``), which includes the Python interpreter and libraries,
not just the model: it is what a worker process running this model needs.
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reelfoundry.finops.energy import EnergySpec
from reelfoundry.portfolio.base import GenerationParams

#: Exit status the parent reports when the child died without a result.
_NO_RESULT = "the evaluation process ended without a result"


@dataclass(frozen=True)
class RunPlan:
    """What the child runs: a card, its items, where the clips go, whether the network guard is on."""

    card: dict[str, Any]
    items: list[GenerationParams]
    out_dir: Path
    guard_network: bool
    energy: EnergySpec | None = None
    #: Run the first item a second time (the same-seed check of onboarding).
    repeat_first: bool = False


@dataclass
class ClipRun:
    """One generated clip: its file (None if it failed), its seconds, and its error if any."""

    index: int
    video: Path | None
    seconds: float
    error: str | None = None


@dataclass
class RunResult:
    """What the child measured."""

    clips: list[ClipRun] = field(default_factory=list)
    #: The first item generated again with the same parameters (``repeat_first``).
    repeat: ClipRun | None = None
    #: Building the backend (a backend loads weights on its first generate, counted in that clip).
    setup_seconds: float = 0.0
    peak_memory_mb: float = 0.0
    peak_memory_method: str = "rss-high-water"
    energy_j: float = 0.0
    energy_method: str = "none"
    network_attempts: list[str] = field(default_factory=list)
    #: Why the run stopped early (the backend could not be built, the child died, the time ran out).
    error: str | None = None


def run(plan: RunPlan, timeout_s: float) -> RunResult:
    """Run ``plan`` in a child process; a child that outlives ``timeout_s`` is killed and reported."""
    ctx = mp.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_child_main, args=(plan, sender), daemon=True)
    child.start()
    sender.close()
    result: RunResult | None = None
    try:
        if receiver.poll(timeout_s):
            try:
                result = receiver.recv()
            except EOFError:
                result = None
        else:
            child.kill()
            return RunResult(error=f"the run took longer than {timeout_s:g} s and was stopped")
    finally:
        child.join(10)
        if child.is_alive():
            child.kill()
            child.join()
        receiver.close()
    if result is None:
        return RunResult(error=f"{_NO_RESULT} (exit status {child.exitcode})")
    return result


def _child_main(plan: RunPlan, conn: Any) -> None:
    """The child: guard, build, generate each item, measure, send one RunResult."""
    result = RunResult()
    if plan.guard_network:
        from reelfoundry.evaluation import netguard

        netguard.install()
    try:
        _run_items(plan, result)
    except BaseException as exc:  # the backend could not be built, or the meter failed: reported, not raised
        result.error = _one_line(exc)
    finally:
        _peak_memory(result)
        if plan.guard_network:
            from reelfoundry.evaluation import netguard

            result.network_attempts = netguard.attempts()
        conn.send(result)
        conn.close()


def _run_items(plan: RunPlan, result: RunResult) -> None:
    from reelfoundry.execution.produce import produce
    from reelfoundry.finops.energy import EnergyMeter
    from reelfoundry.portfolio.registry import backend_class
    from reelfoundry.schema import ModelCard

    card = ModelCard.model_validate(plan.card)
    started = time.perf_counter()
    backend = backend_class(card.backend)(card)
    result.setup_seconds = time.perf_counter() - started
    plan.out_dir.mkdir(parents=True, exist_ok=True)

    def one(index: int, params: GenerationParams, name: str) -> ClipRun:
        video = plan.out_dir / f"{name}.mp4"
        began = time.perf_counter()
        try:
            produce(backend, params, video)
        except Exception as exc:  # one failed clip is a finding, not the end of the run
            return ClipRun(index, None, time.perf_counter() - began, _one_line(exc))
        return ClipRun(index, video, time.perf_counter() - began)

    meter = EnergyMeter(plan.energy) if plan.energy is not None else None
    if meter is not None:
        meter.__enter__()
    try:
        for index, params in enumerate(plan.items):
            result.clips.append(one(index, params, f"clip{index:03d}"))
        if plan.repeat_first and plan.items:
            result.repeat = one(0, plan.items[0], "repeat000")
    finally:
        if meter is not None:
            meter.__exit__(None, None, None)
            result.energy_j, result.energy_method = meter.joules, meter.method


def _peak_memory(result: RunResult) -> None:
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        result.peak_memory_mb = torch.cuda.max_memory_allocated() / 2**20
        result.peak_memory_method = "cuda-max-allocated"
        return
    # Linux reports ru_maxrss in KiB.
    result.peak_memory_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result.peak_memory_method = "rss-high-water"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    where = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    at = f" (at {Path(where[0].filename).name}:{where[0].lineno})" if where else ""
    return f"{type(exc).__name__}: {text[0][:400] if text else ''}{at}"
