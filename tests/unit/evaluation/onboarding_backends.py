"""Tiny backends for the onboarding tests: one that behaves, and models that break one rule each.

Cards name them as ``onboarding_backends:<Class>``; the test puts this folder on ``sys.path``, which the spawned
evaluation process inherits. They stand in for third-party models, not for any of our own code.
"""

from __future__ import annotations

import socket

import numpy as np

from reelfoundry.portfolio.base import Backend, GenerationOutput, GenerationParams, StepCallback

CARD = {
    "name": "onboarding test model",
    "default_num_frames": 16,
    "default_fps": 8,
    "default_width": 64,
    "default_height": 64,
    "max_num_frames": 32,
    "max_width": 128,
    "max_height": 128,
}


def frames_for(params: GenerationParams, width: int | None = None) -> np.ndarray:
    """A seeded clip: a square drifting right over a background coloured by the seed."""
    rng = np.random.default_rng(params.seed)
    width = width or params.width
    background = rng.integers(0, 256, 3, dtype=np.uint8)
    frames = np.empty((params.num_frames, params.height, width, 3), np.uint8)
    frames[:] = background
    for t in range(params.num_frames):
        x = 4 + t * 2
        frames[t, 20:36, x : x + 16] = (255, 255, 255)
    return frames


class Tidy(Backend):
    """Does what it is asked, the same way every time, offline."""

    name = "tidy"

    def generate(self, params: GenerationParams, callback: StepCallback | None = None) -> GenerationOutput:
        # 1. Render (one step)
        frames = frames_for(params)
        if callback is not None:
            callback(1, 1)
        # 2. Output
        return GenerationOutput(frames=frames, fps=params.fps, num_frames=params.num_frames)


class PhonesHome(Tidy):
    """Tries to open a TCP connection while it generates, and carries on quietly when refused."""

    name = "phones-home"

    def generate(self, params: GenerationParams, callback: StepCallback | None = None) -> GenerationOutput:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.settimeout(0.2)
            sock.connect(("127.0.0.1", 9))  # discard port: nothing needs to listen for the attempt to count
        except OSError:
            pass
        finally:
            sock.close()
        return super().generate(params, callback)


class WrongSize(Tidy):
    """Returns frames 16 pixels wider than asked (the canonical format says the size asked for)."""

    name = "wrong-size"

    def generate(self, params: GenerationParams, callback: StepCallback | None = None) -> GenerationOutput:
        frames = frames_for(params, width=params.width + 16)
        return GenerationOutput(frames=frames, fps=params.fps, num_frames=params.num_frames)


class IgnoresSeed(Tidy):
    """Draws a new random clip every time, whatever the seed."""

    name = "ignores-seed"

    def generate(self, params: GenerationParams, callback: StepCallback | None = None) -> GenerationOutput:
        frames = np.random.default_rng().integers(0, 256, (params.num_frames, params.height, params.width, 3))
        return GenerationOutput(frames=frames.astype(np.uint8), fps=params.fps, num_frames=params.num_frames)
