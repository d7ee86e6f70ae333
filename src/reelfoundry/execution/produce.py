"""Backend → frames → MP4 + poster: the one path every generation takes (CLI and workers)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from reelfoundry.media import MediaInfo, encode_mp4, write_poster
from reelfoundry.media.probe import file_digest
from reelfoundry.portfolio.base import Backend, GenerationParams, StepCallback
from reelfoundry.provenance.manifest import Signing, sign_mp4


@dataclass(frozen=True)
class Produced:
    """Files written by :func:`produce` and their metadata."""

    media: MediaInfo
    video: Path
    poster: Path


def produce(
    backend: Backend,
    params: GenerationParams,
    video: Path,
    callback: StepCallback | None = None,
    signing: Signing | None = None,
) -> Produced:
    """Check, generate, encode, sign (C2PA, when ``signing`` is given). The poster (a JPEG of the
    middle frame) goes beside the video; on any failure neither file is left behind."""
    backend.check_inputs(params)
    output = backend.generate(params, callback)
    middle: list[np.ndarray] = []
    encoded = video.with_name(video.stem + ".unsigned.mp4") if signing is not None else video
    media = encode_mp4(_keep(output.frames, output.num_frames // 2, middle), output.fps, encoded)
    poster = video.with_suffix(".jpg")
    try:
        if signing is not None:
            sign_mp4(
                encoded,
                video,
                signing.credentials,
                title=video.name,
                source_type=signing.source_type,
                generation=signing.generation,
            )
            size, digest = file_digest(video)
            media = replace(media, bytes=size, sha256=digest)
        write_poster(middle[0], poster)
    except BaseException:
        video.unlink(missing_ok=True)
        raise
    finally:
        if encoded != video:
            encoded.unlink(missing_ok=True)
    return Produced(media=media, video=video, poster=poster)


def _keep(frames: Iterable[np.ndarray], index: int, into: list[np.ndarray]) -> Iterator[np.ndarray]:
    """Pass frames through, keeping a copy of frame ``index`` (the poster)."""
    for i, frame in enumerate(frames):
        if i == index or (i < index and not into):
            into[:] = [frame.copy()]
        yield frame
