"""The worker process: receives WorkItems over a pipe, runs them, reports back.

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
import signal
import time
from decimal import Decimal
from multiprocessing.connection import Connection

from reelfoundry.errors import BackendError, GenerationCancelled, ReelFoundryError
from reelfoundry.execution.messages import Finished, Progress, WorkItem
from reelfoundry.execution.produce import produce
from reelfoundry.finops.energy import EnergyMeter
from reelfoundry.finops.meter import VendorCharge
from reelfoundry.portfolio.base import Backend
from reelfoundry.portfolio.registry import backend_class

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
            if isinstance(msg, WorkItem):
                finished, retire = run_item(conn, msg, backends, memory_limit_mb)
                if retire:
                    # RETIRE goes first, so the executor never hands this process another job.
                    conn.send(RETIRE)
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
