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

import hashlib
import json
import mmap
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from reelfoundry.portfolio.base import (
    Backend,
    FinetuneOutput,
    FinetuneSpec,
    GenerationOutput,
    GenerationParams,
    StepCallback,
    TrainingClip,
)

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
        grey = 128
        lora = self.card.options.get("lora")
        if isinstance(lora, dict) and lora.get("path"):  # a fine-tuned card: the adapter's one value is the grey
            from safetensors.numpy import load_file

            grey = int(load_file(str(lora["path"]))["grey"][0])
        frames = np.full((params.num_frames, params.height, params.width, 3), grey, dtype=np.uint8)
        return GenerationOutput(frames=frames, fps=params.fps, num_frames=params.num_frames)

    def finetune(
        self, clips: Sequence[TrainingClip], spec: FinetuneSpec, out_dir: Path, callback: StepCallback | None = None
    ) -> FinetuneOutput:
        """A stand-in for training: one step per ``spec.steps`` (``slow-…`` names take 0.2 s each), then an
        "adapter" whose one value (the grey its model renders) follows from the clips' sizes, captions and seed."""
        from safetensors.numpy import save_file

        for i in range(spec.steps):
            if spec.name.startswith("slow"):
                time.sleep(0.2)
            if callback is not None:
                callback(i + 1, spec.steps)
        digest = hashlib.sha256(str(spec.seed).encode())
        for clip in clips:
            digest.update(clip.path.read_bytes())
            digest.update(clip.caption.encode())
        adapter = out_dir / "adapter_model.safetensors"
        save_file({"grey": np.array([40 + digest.digest()[0] % 160], dtype=np.uint8)}, str(adapter))
        config = out_dir / "adapter_config.json"
        config.write_text(json.dumps({"rank": spec.rank, "clips": len(clips)}))
        return FinetuneOutput(adapter, files=(config,), info={"clips": len(clips)})
