"""The worker process: receives WorkItems (and WorkBatches) over a pipe, runs them, reports back.

It runs in its own process so a backend that crashes or hangs takes down only
itself; the executor notices and fails the job while the server keeps serving.

A worker may also be given a memory limit. A job that needs more fails with a
message naming the limit, and the worker then exits so that a fresh process, not
one with a fragmented heap, runs the next job.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import resource
import shutil
import signal
import time
from decimal import Decimal
from multiprocessing.connection import Connection
from pathlib import Path

from reelfoundry.errors import BackendError, GenerationCancelled, ReelFoundryError
from reelfoundry.execution.messages import Finished, Progress, WorkBatch, WorkItem
from reelfoundry.execution.produce import Produced, produce
from reelfoundry.finops.energy import EnergyMeter, EnergySpec
from reelfoundry.finops.meter import VendorCharge
from reelfoundry.portfolio.base import (
    Backend,
    FinetuneOutput,
    GenerationOutput,
    GenerationParams,
    StepCallback,
    TrainingClip,
)
from reelfoundry.portfolio.registry import backend_class
from reelfoundry.schema import ModelCard

CANCEL = "cancel"
#: Sent by a worker that ran out of memory, before its Finished: it exits after reporting and must get no more work.
RETIRE = "retire"
#: Exit status of a worker that ran out of memory where it could not report it (while reading or sending).
OUT_OF_MEMORY_EXIT = 75
_PR_SET_PDEATHSIG = 1
#: What a failed allocation says where it is not a MemoryError: torch's CPU allocator raises RuntimeError
#: ("DefaultCPUAllocator: can't allocate memory ... (Cannot allocate memory)"); C libraries quote strerror(ENOMEM).
_NO_MEMORY_TEXTS = ("can't allocate memory", "Cannot allocate memory")


def _die_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGKILL this process when the server dies, so no orphan keeps rendering."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        return
    if os.getppid() != parent_pid:
        os._exit(1)


def memory_detail(limit_mb: int) -> str:
    """Why a job that ran out of memory failed: the worker's limit, or the machine's memory when there is none."""
    if limit_mb > 0:
        return (
            f"the job needed more memory than the worker's limit of {limit_mb} MiB (REELFOUNDRY_WORKER_MEMORY_LIMIT_MB)"
        )
    return "the job ran out of memory: the machine had none left (the worker has no limit of its own)"


def limit_memory(limit_mb: int) -> None:
    """Cap this process's private writable memory at ``limit_mb`` MiB (0: no cap); allocations past it fail.

    RLIMIT_DATA, not RLIMIT_AS: the address-space limit counts reservations that use no memory, and a worker
    makes many: torch's libraries, a malloc arena per thread (64 MiB each), thread stacks, and on a GPU host
    the CUDA driver maps tens of GiB of address space at start-up, so RLIMIT_AS would fail jobs that fit. Since
    Linux 4.7 RLIMIT_DATA counts private writable mappings (heap, anonymous mmap, the arenas' used parts, thread
    stacks): the memory a backend allocates. Shared mappings escape it; the executor's watchdog covers those.
    """
    if limit_mb <= 0:
        return
    limit = limit_mb * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


def out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc``, or an error it was raised from, is a failed allocation."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, MemoryError):
            return True
        if isinstance(current, OSError) and current.errno == errno.ENOMEM:
            return True
        if isinstance(current, RuntimeError) and any(text in str(current) for text in _NO_MEMORY_TEXTS):
            return True
        current = current.__cause__ or current.__context__
    return False


def worker_main(conn: Connection, parent_pid: int, memory_limit_mb: int = 0) -> None:
    """Entry point of a worker process: serve WorkItems until told to stop, orphaned or out of memory."""
    _die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the server, which stops us.
    limit_memory(memory_limit_mb)
    backends: dict[str, Backend] = {}
    try:
        while True:
            if not conn.poll(1.0):
                if os.getppid() != parent_pid:
                    return
                continue
            try:
                msg = conn.recv()
            except EOFError:
                return
            if msg is None:
                return
            if isinstance(msg, WorkItem | WorkBatch):
                if isinstance(msg, WorkItem):
                    finished, retire = run_item(conn, msg, backends, memory_limit_mb)
                    reports = [finished]
                else:
                    reports, retire = run_batch(conn, msg, backends, memory_limit_mb)
                if retire:
                    # RETIRE goes first, so the executor never hands this process another job.
                    conn.send(RETIRE)
                for finished in reports:
                    conn.send(finished)
                if retire:
                    return
    except MemoryError:
        # Out of memory outside a job's code (receiving, reporting): the executor reads this status.
        os._exit(OUT_OF_MEMORY_EXIT)


def run_item(
    conn: Connection, item: WorkItem, backends: dict[str, Backend], memory_limit_mb: int = 0
) -> tuple[Finished, bool]:
    """Run one attempt; every exception becomes a Finished message.

    The flag is True when the attempt ran out of memory: the worker should exit once it has reported.
    """
    start = time.perf_counter()

    def callback(step: int, total: int) -> None:
        while conn.poll():
            msg = conn.recv()
            if msg is None or msg == (CANCEL, item.job_id):
                raise GenerationCancelled(f"job {item.job_id} cancelled at step {step}/{total}")
        conn.send(Progress(item.job_id, item.attempt, step, total))

    meter = EnergyMeter(item.energy) if item.energy is not None else None

    def done(vendor_usd: object = "0", **kw: object) -> Finished:
        energy = {"energy_j": meter.joules, "energy_method": meter.method} if meter is not None else {}
        hosting = item.card.hosting
        # A vendor's attempt is charged what the vendor charged: its price for what it delivered, else nothing.
        if not isinstance(hosting, str):
            kw["vendor"] = VendorCharge(hosting.vendor, hosting.region, Decimal(str(vendor_usd)))
        return Finished(item.job_id, item.attempt, seconds=time.perf_counter() - start, **energy, **kw)  # type: ignore[arg-type]

    try:
        with meter if meter is not None else contextlib.nullcontext():
            backend = backends.get(item.card.id)
            if backend is None or backend.card != item.card:
                backend = backends[item.card.id] = backend_class(item.card.backend)(item.card)
            if item.finetune is not None:
                return done(artifact=_finetune(backend, item, callback)), False
            video = item.out_dir / f"{item.job_id}-{item.attempt}.mp4"
            result = produce(backend, item.params, video, callback, item.signing)
        return (
            done(
                media=result.media,
                video_path=result.video,
                poster_path=result.poster,
                vendor_usd=result.info.get("vendor_usd", "0"),
            ),
            False,
        )
    except GenerationCancelled:
        return done(cancelled=True), False
    except ReelFoundryError as exc:
        if not out_of_memory(exc):
            return done(error_type=exc.type, error_detail=exc.detail), False
    except Exception as exc:  # a backend bug must fail its job, not the worker
        if not out_of_memory(exc):
            err = BackendError(f"backend {item.card.backend!r} raised {type(exc).__name__}: {exc}")
            return done(error_type=err.type, error_detail=err.detail), False
    # Out of memory. Reported here, past the except blocks: they held the traceback, and with it the backend's
    # frames and whatever those had allocated. The loaded models go too: the process exits next, and reporting
    # needs a little room.
    backends.clear()
    return done(error_type=BackendError.problem_type(), error_detail=memory_detail(memory_limit_mb)), True


def adapter_dir(out_dir: Path, job_id: str, attempt: int) -> Path:
    """Where a fine-tune attempt writes its adapter (a directory in the work dir, named like the attempt's files)."""
    return out_dir / f"{job_id}-{attempt}.adapter"


def _finetune(backend: Backend, item: WorkItem, callback: StepCallback) -> FinetuneOutput:
    """Train the item's adapter into its own directory; on any failure (a cancel included) nothing of it stays."""
    assert item.finetune is not None
    work = item.finetune
    clips = [
        TrainingClip(path, caption, asset_id)
        for path, caption, asset_id in zip(item.params.inputs, work.captions, work.asset_ids, strict=True)
    ]
    out = adapter_dir(item.out_dir, item.job_id, item.attempt)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    try:
        result = backend.finetune(clips, work.spec, out, callback)
        if not result.adapter.is_file() or result.adapter.parent != out:
            raise BackendError(f"backend {item.card.backend!r} wrote no adapter file in its directory")
        return result
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise


class _Generated(Backend):
    """Hands :func:`produce` frames a batch already generated, so each job of a batch is encoded, signed and
    given its poster on the one path every generation takes."""

    name = "generated"

    def __init__(self, card: ModelCard, output: GenerationOutput) -> None:
        super().__init__(card)
        self.output = output

    def generate(self, params: GenerationParams, callback: StepCallback | None = None) -> GenerationOutput:
        return self.output


class BatchShares:
    """A batch's device time and energy, split equally among the jobs running at each moment.

    A job that leaves early (cancelled, refused) takes its share so far; from then on the rest split the
    time. Energy is metered per stretch between two departures (a fresh :class:`EnergyMeter` each), so it
    is split the same way. The shares add up to the batch's whole time and energy.
    """

    def __init__(self, job_ids: list[str], energy: EnergySpec | None) -> None:
        self.active = list(job_ids)
        self.seconds = dict.fromkeys(job_ids, 0.0)
        self.joules = dict.fromkeys(job_ids, 0.0)
        self.method = "none"
        self._energy = energy
        self._meter: EnergyMeter | None = None
        self._start: float | None = None

    def __enter__(self) -> BatchShares:
        self._open()
        return self

    def __exit__(self, *exc: object) -> None:
        self._close()

    def _open(self) -> None:
        self._start = time.perf_counter()
        self._meter = EnergyMeter(self._energy).__enter__() if self._energy is not None else None

    def _close(self) -> None:
        if self._start is None:
            return
        wall, self._start = time.perf_counter() - self._start, None
        joules = 0.0
        if self._meter is not None:
            self._meter.__exit__(None, None, None)
            joules, self.method = self._meter.joules, self._meter.method
        for job_id in self.active:
            self.seconds[job_id] += wall / len(self.active)
            self.joules[job_id] += joules / len(self.active)

    def leave(self, job_id: str) -> None:
        """``job_id`` stops sharing the device now (its share so far is kept)."""
        running = self._start is not None
        self._close()
        self.active.remove(job_id)
        if running:
            self._open()

    def usage(self, job_id: str) -> dict[str, object]:
        """``Finished`` fields of a job's share: seconds, and its energy where energy is measured."""
        if self._energy is None:
            return {"seconds": self.seconds[job_id]}
        return {"seconds": self.seconds[job_id], "energy_j": self.joules[job_id], "energy_method": self.method}


def run_batch(
    conn: Connection, batch: WorkBatch, backends: dict[str, Backend], memory_limit_mb: int = 0
) -> tuple[list[Finished], bool]:
    """Run the attempts of a batch: one ``generate_batch`` call, then each job's own video, poster and C2PA
    manifest (its own ``signing``). Returns the ``Finished`` of the jobs still in the batch at its end (a job
    cancelled or refused on the way has been reported already, at once), and whether the worker ran out of
    memory (it should then exit once it has reported).

    Each job reports its own progress; ``seconds`` and energy are its share of the batch's (:class:`BatchShares`).
    A cancel of one job discards its output while the rest go on; once every job is cancelled the batch stops
    at the next step boundary. A failure of the batch as a whole (a backend error, a crash, running out of
    memory) ends every job still in it as the same failure would end a single job; one of encoding or signing
    fails only its job.
    """
    items = {item.job_id: item for item in batch.items}
    card = batch.items[0].card
    if any(item.card != card for item in batch.items):
        raise ValueError("a batch runs one card")
    shares = BatchShares(list(items), batch.items[0].energy)
    produced: dict[str, Produced] = {}
    errors: dict[str, dict[str, object]] = {}

    def leave(job_id: str, **kw: object) -> None:
        """End a job now, before the batch does, and report it."""
        shares.leave(job_id)
        item = items[job_id]
        conn.send(Finished(job_id, item.attempt, **shares.usage(job_id), **kw))  # type: ignore[arg-type]
        done = produced.pop(job_id, None)
        if done is not None:
            _discard(done)

    def read_messages() -> None:
        """Act on cancels sent since the last look; stop the batch when no job is left in it."""
        while conn.poll():
            msg = conn.recv()
            if msg is None:
                raise GenerationCancelled("the worker is stopping")
            if isinstance(msg, tuple) and len(msg) == 2 and msg[0] == CANCEL and msg[1] in shares.active:
                leave(msg[1], cancelled=True)
        if not shares.active:
            raise GenerationCancelled("every job of the batch was cancelled")

    def callback(step: int, total: int) -> None:
        read_messages()
        for job_id in shares.active:
            conn.send(Progress(job_id, items[job_id].attempt, step, total))

    failure: dict[str, object] | None = None
    cancelled = out_of_mem = False
    try:
        with shares:
            backend = backends.get(card.id)
            if backend is None or backend.card != card:
                backend = backends[card.id] = backend_class(card.backend)(card)
            # 1. A job whose parameters the model cannot honour fails alone
            for job_id in list(shares.active):
                try:
                    backend.check_inputs(items[job_id].params)
                except ReelFoundryError as exc:
                    leave(job_id, error_type=exc.type, error_detail=exc.detail)
            read_messages()
            # 2. One generation for the batch
            running = list(shares.active)
            outputs = backend.generate_batch([items[j].params for j in running], callback)
            # 3. Each job its own video, poster and manifest; a cancelled job's output is dropped
            for job_id, output in zip(running, outputs, strict=True):
                read_messages()
                if job_id not in shares.active:
                    continue
                item = items[job_id]
                video = item.out_dir / f"{job_id}-{item.attempt}.mp4"
                try:
                    produced[job_id] = produce(_Generated(card, output), item.params, video, None, item.signing)
                except Exception as exc:
                    if out_of_memory(exc):
                        raise
                    errors[job_id] = _error_fields(exc, card)
    except GenerationCancelled:
        cancelled = True
    except Exception as exc:  # a backend bug fails its batch, not the worker
        if out_of_memory(exc):
            out_of_mem = True
        else:
            failure = _error_fields(exc, card)
    if out_of_mem:
        # As in run_item: reported past the except blocks, which held the traceback and the backend's frames.
        backends.clear()
        failure = {"error_type": BackendError.problem_type(), "error_detail": memory_detail(memory_limit_mb)}
    reports = []
    for job_id in shares.active:
        item = items[job_id]
        usage = shares.usage(job_id)
        done = produced.pop(job_id, None)
        if done is not None and not cancelled and failure is None:
            media = {"media": done.media, "video_path": done.video, "poster_path": done.poster}
            reports.append(Finished(job_id, item.attempt, **usage, **media))  # type: ignore[arg-type]
            continue
        if done is not None:
            _discard(done)
        missing = {"error_type": BackendError.problem_type(), "error_detail": "the batch produced no output for it"}
        kw = {"cancelled": True} if cancelled else failure or errors.get(job_id) or missing
        reports.append(Finished(job_id, item.attempt, **usage, **kw))  # type: ignore[arg-type]
    return reports, out_of_mem


def _error_fields(exc: BaseException, card: ModelCard) -> dict[str, object]:
    """``Finished`` error fields for an exception, as run_item reports them."""
    if isinstance(exc, ReelFoundryError):
        return {"error_type": exc.type, "error_detail": exc.detail}
    err = BackendError(f"backend {card.backend!r} raised {type(exc).__name__}: {exc}")
    return {"error_type": err.type, "error_detail": err.detail}


def _discard(done: Produced) -> None:
    for path in (done.video, done.poster):
        path.unlink(missing_ok=True)
