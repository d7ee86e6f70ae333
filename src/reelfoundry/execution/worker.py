"""The worker process: receives WorkItems over a pipe, runs them, reports back.

It runs in its own process so a backend that crashes or hangs takes down only
itself; the executor notices and fails the job while the server keeps serving.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import time
from multiprocessing.connection import Connection

from reelfoundry.errors import BackendError, GenerationCancelled, ReelFoundryError
from reelfoundry.execution.messages import Finished, Progress, WorkItem
from reelfoundry.execution.produce import produce
from reelfoundry.finops.energy import EnergyMeter
from reelfoundry.portfolio.base import Backend
from reelfoundry.portfolio.registry import backend_class

CANCEL = "cancel"
_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGKILL this process when the server dies, so no orphan keeps rendering."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        return
    if os.getppid() != parent_pid:
        os._exit(1)


def worker_main(conn: Connection, parent_pid: int) -> None:
    """Entry point of a worker process: serve WorkItems until told to stop or orphaned."""
    _die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the server, which stops us.
    backends: dict[str, Backend] = {}
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
            conn.send(run_item(conn, msg, backends))


def run_item(conn: Connection, item: WorkItem, backends: dict[str, Backend]) -> Finished:
    """Run one attempt; every exception becomes a Finished message."""
    start = time.perf_counter()

    def callback(step: int, total: int) -> None:
        while conn.poll():
            msg = conn.recv()
            if msg is None or msg == (CANCEL, item.job_id):
                raise GenerationCancelled(f"job {item.job_id} cancelled at step {step}/{total}")
        conn.send(Progress(item.job_id, item.attempt, step, total))

    meter = EnergyMeter(item.energy) if item.energy is not None else None

    def done(**kw: object) -> Finished:
        energy = {"energy_j": meter.joules, "energy_method": meter.method} if meter is not None else {}
        return Finished(item.job_id, item.attempt, seconds=time.perf_counter() - start, **energy, **kw)  # type: ignore[arg-type]

    try:
        with meter if meter is not None else contextlib.nullcontext():
            backend = backends.get(item.card.id)
            if backend is None or backend.card != item.card:
                backend = backends[item.card.id] = backend_class(item.card.backend)(item.card)
            video = item.out_dir / f"{item.job_id}-{item.attempt}.mp4"
            result = produce(backend, item.params, video, callback, item.signing)
        return done(media=result.media, video_path=result.video, poster_path=result.poster)
    except GenerationCancelled:
        return done(cancelled=True)
    except ReelFoundryError as exc:
        return done(error_type=exc.type, error_detail=exc.detail)
    except Exception as exc:  # a backend bug must fail its job, not the worker
        err = BackendError(f"backend {item.card.backend!r} raised {type(exc).__name__}: {exc}")
        return done(error_type=err.type, error_detail=err.detail)
