"""Backend → frames → MP4 + poster: the one path every generation takes (CLI and workers)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
    media = encode_mp4(output.frames, output.fps, video)
    poster = video.with_suffix(".jpg")
    write_poster(output.frames[len(output.frames) // 2], poster)
    return Produced(media=media, video=video, poster=poster)
