"""Technical metadata of a video file, read with PyAV."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import av

from reelfoundry.errors import InvalidParameter

# Demuxer names (as FFmpeg reports them) mapped to the media type we serve the file as.
_MEDIA_TYPES = {
    "mov,mp4,m4a,3gp,3g2,mj2": "video/mp4",
    "matroska,webm": "video/x-matroska",
    "avi": "video/x-msvideo",
}
_UNKNOWN_MEDIA_TYPE = "application/octet-stream"


@dataclass(frozen=True)
class MediaInfo:
    """What a stored video file is: container, size, digest and stream facts."""

    media_type: str
    bytes: int
    sha256: str
    duration_s: float
    fps: float
    width: int
    height: int
    num_frames: int
    codec: str


def file_digest(path: Path) -> tuple[int, str]:
    """Size in bytes and hex SHA-256 of a file, read in chunks."""
    with path.open("rb") as f:
        digest = hashlib.file_digest(f, "sha256")
    return path.stat().st_size, digest.hexdigest()


def probe(path: Path) -> MediaInfo:
    """Read a video file's technical metadata; raise InvalidParameter("file") if it is not a decodable video."""
    try:
        with av.open(str(path)) as container:
            # Still images open as one-frame "videos" through FFmpeg's image demuxers; they are not clips.
            if container.format.name.endswith("_pipe") or container.format.name == "image2":
                raise InvalidParameter("file", f"{path.name} is a still image, not a video")
            if not container.streams.video:
                raise InvalidParameter("file", f"{path.name} holds no video stream")
            stream = container.streams.video[0]
            media_type = _MEDIA_TYPES.get(container.format.name, _UNKNOWN_MEDIA_TYPE)
            rate = stream.average_rate or stream.guessed_rate
            # Decoding is the only proof the stream is readable; count every frame only when the header is silent.
            decoded = container.decode(stream)
            if next(decoded, None) is None:
                raise InvalidParameter("file", f"{path.name} has a video stream with no decodable frame")
            num_frames = stream.frames or (1 + sum(1 for _ in decoded))
            if stream.duration is not None and stream.time_base is not None:
                duration_s = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration_s = container.duration / av.time_base
            else:
                duration_s = num_frames / float(rate) if rate else 0.0
            codec = stream.codec_context.name
            width, height = stream.codec_context.width, stream.codec_context.height
    except av.FFmpegError as exc:
        raise InvalidParameter("file", f"{path.name} is not a readable video: {exc}") from exc
    size, sha256 = file_digest(path)
    return MediaInfo(
        media_type=media_type,
        bytes=size,
        sha256=sha256,
        duration_s=duration_s,
        fps=float(rate) if rate else 0.0,
        width=width,
        height=height,
        num_frames=num_frames,
        codec=codec,
    )
