"""Backend → frames → MP4 + poster: the one path every generation takes (CLI and workers)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reelfoundry.media import MediaInfo, encode_mp4, write_poster
from reelfoundry.portfolio.base import Backend, GenerationParams, StepCallback


@dataclass(frozen=True)
class Produced:
    """Files written by :func:`produce` and their metadata."""

    media: MediaInfo
    video: Path
    poster: Path


def produce(backend: Backend, params: GenerationParams, video: Path, callback: StepCallback | None = None) -> Produced:
    """Check, generate, encode. The poster (a JPEG of the middle frame) goes beside the video."""
    backend.check_inputs(params)
    output = backend.generate(params, callback)
    middle: list[np.ndarray] = []
    media = encode_mp4(_keep(output.frames, output.num_frames // 2, middle), output.fps, video)
    poster = video.with_suffix(".jpg")
    try:
        write_poster(middle[0], poster)
    except BaseException:
        video.unlink(missing_ok=True)
        raise
    return Produced(media=media, video=video, poster=poster)


def _keep(frames: Iterable[np.ndarray], index: int, into: list[np.ndarray]) -> Iterator[np.ndarray]:
    """Pass frames through, keeping a copy of frame ``index`` (the poster)."""
    for i, frame in enumerate(frames):
        if i == index or (i < index and not into):
            into[:] = [frame.copy()]
        yield frame
