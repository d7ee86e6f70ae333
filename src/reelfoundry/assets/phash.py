"""Near-duplicate detection: perceptual hashes (DCT pHash, 64 bits) of an asset's key frames.

An image has one key frame, itself; a video up to KEY_FRAMES frames spread over its length, decoded with a bound
on the frames read. Two assets are near duplicates when, on average, each key frame of one is within
MAX_DISTANCE bits of some key frame of the other: re-encoded, resized or slightly recoloured copies land well
inside that, different pictures near 32 bits apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

#: Key frames hashed per video.
KEY_FRAMES = 4
#: A video of at most this many frames is decoded in order to find them; a longer one is sought into.
MAX_DECODE_FRAMES = 300
#: Largest side of the frames hashed.
THUMB = 256
#: Mean Hamming distance (of 64 bits) under which two assets are near duplicates.
MAX_DISTANCE = 10
_SIZE = 32
_LOW = 8


@lru_cache(maxsize=1)
def _dct_matrix() -> np.ndarray:
    n = _SIZE
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m: np.ndarray = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2 / n)
    m[0] /= np.sqrt(2)
    return m


def phash(image: Image.Image) -> str:
    """The 64-bit DCT perceptual hash of an image, as 16 hex digits."""
    grey = np.asarray(image.convert("L").resize((_SIZE, _SIZE), Image.Resampling.LANCZOS), dtype=np.float64)
    d = _dct_matrix()
    low = (d @ grey @ d.T)[:_LOW, :_LOW].flatten()
    bits = low > np.median(low[1:])  # the DC term would dominate the median
    return f"{int(''.join('1' if b else '0' for b in bits), 2):016x}"


def distance(a: str, b: str) -> int:
    """Hamming distance of two hashes."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


def key_frames(path: Path, media_type: str) -> list[Image.Image]:
    """The frames an asset is hashed by, greyscale and at most THUMB pixels a side: the image itself, or up to
    KEY_FRAMES frames spread over a video (decoded in order for a short video; for a long one, one seek per key
    frame, so the work stays bounded whatever the length)."""
    if media_type.startswith("image/"):
        with Image.open(path) as img:
            img.draft("L", (THUMB, THUMB))  # JPEG: decode at a fraction of full size
            grey = img.convert("L")
            grey.thumbnail((THUMB, THUMB))
            return [grey]
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        total = stream.frames or 0
        if 0 < total <= MAX_DECODE_FRAMES:
            wanted = {round(i * (total - 1) / (KEY_FRAMES - 1)) for i in range(KEY_FRAMES)}
            frames = []
            for index, frame in enumerate(container.decode(stream)):
                if index in wanted:
                    frames.append(_small(frame))
                if len(frames) == len(wanted) or index + 1 >= MAX_DECODE_FRAMES:
                    break
            return frames
        duration = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else 0.0
        if duration <= 0 or stream.time_base is None:
            return [_small(next(container.decode(stream)))]
        frames = []
        for i in range(KEY_FRAMES):
            target = duration * i / KEY_FRAMES
            container.seek(int(target / stream.time_base), stream=stream)  # lands on the key frame before it
            chosen = None
            for decoded, frame in enumerate(container.decode(stream)):
                chosen = frame
                if (frame.time or 0.0) >= target or decoded + 1 >= MAX_DECODE_FRAMES:
                    break
            if chosen is not None:
                frames.append(_small(chosen))
        return frames


def _small(frame: Any) -> Image.Image:
    """A decoded video frame as a small greyscale image (a 4K frame never becomes a full-size picture)."""
    width, height = frame.width, frame.height
    scale = min(1.0, THUMB / max(width, height))
    small = frame.reformat(width=max(1, round(width * scale)), height=max(1, round(height * scale)), format="gray")
    image: Image.Image = small.to_image()
    return image


def hashes_of(path: Path, media_type: str) -> str:
    """The key-frame hashes of a file as stored in ``assets.phash`` (comma-separated)."""
    return ",".join(phash(f) for f in key_frames(path, media_type))


def split(stored: str | None) -> list[str]:
    """The hashes of a stored ``phash`` value (malformed parts dropped)."""
    out = []
    for part in (stored or "").split(","):
        if len(part) == 16 and all(c in "0123456789abcdef" for c in part):
            out.append(part)
    return out


def similarity(mine: Sequence[str], theirs: Sequence[str]) -> float:
    """Mean over ``mine`` of the distance to the nearest of ``theirs`` (64.0 when either is empty)."""
    if not mine or not theirs:
        return 64.0
    return sum(min(distance(a, b) for b in theirs) for a in mine) / len(mine)


def near_duplicates(mine: str, candidates: Iterable[tuple[str, str | None]]) -> list[str]:
    """Ids of the ``(id, stored phash)`` candidates that are near duplicates of ``mine``, nearest first."""
    own = split(mine)
    scored = [(similarity(own, split(stored)), asset_id) for asset_id, stored in candidates]
    return [asset_id for score, asset_id in sorted(scored) if score <= MAX_DISTANCE]
