"""Frames to an H.264 MP4 (and a poster JPEG), each written atomically."""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from reelfoundry.errors import InvalidParameter
from reelfoundry.media.probe import MediaInfo, file_digest

X264_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)
POSTER_QUALITY = 88


def _current_umask() -> int:
    # Read once at import: os.umask() can only be read by setting it, which is not thread-safe.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


@contextmanager
def _atomic_target(out: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``out``; it replaces ``out`` only if the block succeeds."""
    # Same directory, so os.replace is a rename on one filesystem and readers never see a partial file.
    fd, name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".part")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        # mkstemp makes the file 0600; give the result the mode a normal open() would.
        tmp.chmod(0o666 & ~_UMASK)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _check_frame(frame: object, index: int, size: tuple[int, int] | None = None) -> None:
    """Raise InvalidParameter unless ``frame`` is uint8 RGB of even size (and ``size`` when given)."""
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8:
        got = frame.dtype if isinstance(frame, np.ndarray) else type(frame).__name__
        raise InvalidParameter("frames", f"frame {index} must be a uint8 numpy array, got {got}")
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise InvalidParameter("frames", f"frame {index} must have shape (height, width, 3), got {frame.shape}")
    height, width = frame.shape[:2]
    if size is not None and (height, width) != size:
        raise InvalidParameter("frames", f"frame {index} is {width}x{height} but frame 0 is {size[1]}x{size[0]}")
    # yuv420p stores chroma at half resolution, so H.264 needs even sides.
    if width % 2:
        raise InvalidParameter("width", f"width must be even for H.264 yuv420p, got {width}")
    if height % 2:
        raise InvalidParameter("height", f"height must be even for H.264 yuv420p, got {height}")


def encode_mp4(
    frames: Iterable[np.ndarray],
    fps: int,
    out: Path,
    *,
    crf: int = 20,
    preset: str = "veryfast",
    progress: Callable[[int], None] | None = None,
) -> MediaInfo:
    """Encode uint8 RGB frames (H, W, 3) to an H.264 yuv420p MP4 with the index up front (faststart).

    ``progress`` is called with the number of frames encoded so far after each frame.
    ``out`` is replaced atomically; on any error no file is left behind.
    """
    if fps < 1:
        raise InvalidParameter("fps", f"fps must be at least 1, got {fps}")
    if not 0 <= crf <= 51:
        raise InvalidParameter("crf", f"crf must be between 0 and 51, got {crf}")
    if preset not in X264_PRESETS:
        raise InvalidParameter("preset", f"preset must be one of {', '.join(X264_PRESETS)}, got {preset!r}")
    pending = iter(frames)
    first = next(pending, None)
    if first is None:
        raise InvalidParameter("frames", "no frames to encode")
    _check_frame(first, 0)
    size = first.shape[:2]
    time_base = Fraction(1, fps)
    count = 0
    with (
        _atomic_target(out) as tmp,
        av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as container,
    ):
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": preset}
        for frame in itertools.chain([first], pending):
            _check_frame(frame, count, size)
            video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            # One tick per frame: the muxer then writes exact durations and the true frame count.
            video_frame.pts = count
            video_frame.time_base = time_base
            container.mux(stream.encode(video_frame))
            count += 1
            if progress is not None:
                progress(count)
        container.mux(stream.encode())
    nbytes, sha256 = file_digest(out)
    return MediaInfo(
        media_type="video/mp4",
        bytes=nbytes,
        sha256=sha256,
        duration_s=count / fps,
        fps=float(fps),
        width=size[1],
        height=size[0],
        num_frames=count,
        codec="h264",
    )


def write_poster(frame: np.ndarray, out: Path) -> None:
    """Write one uint8 RGB frame (H, W, 3) as a JPEG poster, atomically."""
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        got = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
        raise InvalidParameter("frame", f"poster frame must be uint8 with shape (height, width, 3), got {got}")
    with _atomic_target(out) as tmp:
        Image.fromarray(frame, "RGB").save(tmp, format="JPEG", quality=POSTER_QUALITY)
