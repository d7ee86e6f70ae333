"""A backend that misbehaves on request, to test the engine against real failures.

The prompt picks the behaviour: ``raise``, ``crash`` (the worker process dies;
``crash:<status>`` with that exit status), ``hang`` (never returns),
``slow:<seconds>`` (steps spread over that time), ``hog:<MiB>`` (allocates and
touches that much with numpy, as a model's tensors would, then renders),
``hog-shared:<MiB>`` (the same in shared memory, which a data limit does not
count, then holds it and never returns); anything else renders flat grey frames.
It stands in for a buggy model, not for any of our own code.
"""

from __future__ import annotations

import mmap
import os
import time

import numpy as np

from reelfoundry.portfolio.base import Backend, GenerationOutput, GenerationParams, StepCallback

CARD = {
    "id": "faulty",
    "name": "Faulty test backend",
    "backend": "faulty_backend:FaultyBackend",
    "default_num_frames": 8,
    "default_fps": 8,
    "default_width": 64,
    "default_height": 64,
    "max_num_frames": 64,
    "max_width": 256,
    "max_height": 256,
}

_MIB = 1024 * 1024
#: Hogs allocate in pieces of this many MiB, as a model does tensor by tensor.
_HOG_PIECE_MIB = 16


def _hog(mib: int) -> list[np.ndarray]:
    """``mib`` MiB of private memory, every page written."""
    return [np.ones(min(_HOG_PIECE_MIB, mib - done) * _MIB, dtype=np.uint8) for done in range(0, mib, _HOG_PIECE_MIB)]


def _hog_shared(mib: int) -> mmap.mmap:
    """``mib`` MiB of anonymous shared memory (as shm or a GPU driver maps it), every page written."""
    shared = mmap.mmap(-1, mib * _MIB)  # MAP_SHARED | MAP_ANONYMOUS
    for offset in range(0, mib * _MIB, mmap.PAGESIZE):
        shared[offset] = 1
    return shared


class FaultyBackend(Backend):
    """Misbehaves as its prompt says."""

    name = "faulty"

    def generate(self, params: GenerationParams, callback: StepCallback | None = None) -> GenerationOutput:
        # 1. Decide the behaviour
        mode, _, arg = params.prompt.partition(":")
        if mode == "raise":
            raise RuntimeError("the model exploded on purpose")
        if mode == "crash":
            os._exit(int(arg) if arg else 17)
        held: object = None
        if mode == "hog":
            held = _hog(int(arg))
        elif mode == "hog-shared":
            held = _hog_shared(int(arg))
            time.sleep(3600)  # holding it, until something kills the worker
        delay = float(arg) / params.num_frames if mode == "slow" else 0.0
        # 2. Step loop
        for i in range(params.num_frames):
            if mode == "hang":
                time.sleep(3600)
            time.sleep(delay)
            if callback is not None:
                callback(i + 1, params.num_frames)
        # 3. Output
        del held  # a hog's memory goes back before the frames are made
        frames = np.full((params.num_frames, params.height, params.width, 3), 128, dtype=np.uint8)
        return GenerationOutput(frames=frames, fps=params.fps, num_frames=params.num_frames)
