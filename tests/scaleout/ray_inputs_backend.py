"""A test backend that checks its input files, for the Ray executor's tests (on the Ray nodes' PYTHONPATH).

The prompt lists what each input must be: ``<name>=<sha256>`` per input, separated by spaces. The backend
raises (failing the job, saying what it found) unless every ``params.inputs`` path exists on this node, has
that basename and those bytes; then it renders flat frames as the faulty test backend does. Its card is the
faulty backend's with ``backend: ray_inputs_backend:InputsBackend``.
"""

from __future__ import annotations

import hashlib

import numpy as np

from reelfoundry.portfolio.base import Backend, GenerationOutput, GenerationParams, StepCallback


class InputsBackend(Backend):
    """Renders only when its inputs arrived as the prompt says."""

    name = "inputs-check"

    def generate(self, params: GenerationParams, callback: StepCallback | None = None) -> GenerationOutput:
        expected = [part.split("=", 1) for part in params.prompt.split()]
        found = [
            (path.name, hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing")
            for path in params.inputs
        ]
        if found != [tuple(e) for e in expected]:
            raise RuntimeError(f"inputs {found} are not {expected}")
        for i in range(params.num_frames):
            if callback is not None:
                callback(i + 1, params.num_frames)
        frames = np.full((params.num_frames, params.height, params.width, 3), 200, dtype=np.uint8)
        return GenerationOutput(frames=frames, fps=params.fps, num_frames=params.num_frames)
