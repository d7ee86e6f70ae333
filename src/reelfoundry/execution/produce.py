"""Backend → frames → MP4 + poster: the one path every generation takes (CLI and workers)."""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import av
import numpy as np

from reelfoundry.media import MediaInfo, encode_mp4, probe, write_poster
from reelfoundry.media.probe import file_digest
from reelfoundry.portfolio.base import Backend, GenerationParams, StepCallback
from reelfoundry.provenance.manifest import Signing, sign_mp4


@dataclass(frozen=True)
class Produced:
    """Files written by :func:`produce` and their metadata."""

    media: MediaInfo
    video: Path
    poster: Path
    #: The backend's facts (GenerationOutput.info), e.g. a vendor's charge.
    info: dict[str, object] = field(default_factory=dict)


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
    if output.video is not None:
        # A finished MP4 (a vendor's): signed as it is, not decoded and encoded a second time.
        try:
            media = probe(output.video)
            if media.media_type != "video/mp4":
                raise ValueError(f"{backend.name} returned a {media.media_type} file, not an MP4")
            middle.append(_frame(output.video, media.num_frames // 2))
            shutil.copyfile(output.video, encoded)  # a new file, with the mode a normal write gives
        finally:
            output.video.unlink(missing_ok=True)
    else:
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
    return Produced(media=media, video=video, poster=poster, info=output.info)


def _frame(path: Path, index: int) -> np.ndarray:
    """Frame ``index`` of a video (or its last, if it has fewer) as uint8 RGB."""
    last: np.ndarray | None = None
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            last = frame.to_ndarray(format="rgb24")
            if i >= index:
                break
    if last is None:
        raise ValueError(f"{path.name} has no decodable frame")
    return last


def _keep(frames: Iterable[np.ndarray], index: int, into: list[np.ndarray]) -> Iterator[np.ndarray]:
    """Pass frames through, keeping a copy of frame ``index`` (the poster)."""
    for i, frame in enumerate(frames):
        if i == index or (i < index and not into):
            into[:] = [frame.copy()]
        yield frame
