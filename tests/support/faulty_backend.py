"""A backend that misbehaves on request, to test the engine against real failures.

The prompt picks the behaviour: ``raise``, ``crash`` (the worker process dies),
``hang`` (never returns), ``slow:<seconds>`` (steps spread over that time),
anything else renders flat grey frames. It stands in for a buggy model, not for
any of our own code.
"""

from __future__ import annotations

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


class FaultyBackend(Backend):
    """Misbehaves as its prompt says."""

    name = "faulty"

    def generate(self, params: GenerationParams, callback: StepCallback | None = None) -> GenerationOutput:
        # 1. Decide the behaviour
        mode, _, arg = params.prompt.partition(":")
        if mode == "raise":
            raise RuntimeError("the model exploded on purpose")
        if mode == "crash":
            os._exit(17)
        delay = float(arg) / params.num_frames if mode == "slow" else 0.0
        # 2. Step loop
        for i in range(params.num_frames):
            if mode == "hang":
                time.sleep(3600)
            time.sleep(delay)
            if callback is not None:
                callback(i + 1, params.num_frames)
        # 3. Output
        frames = np.full((params.num_frames, params.height, params.width, 3), 128, dtype=np.uint8)
        return GenerationOutput(frames=frames, fps=params.fps, num_frames=params.num_frames)
