"""Perceptual hashes of key frames: copies (resized, re-encoded, fewer frames) come out near, other pictures far."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from reelfoundry.assets import phash
from reelfoundry.media.encode import encode_mp4


def _scene(i: int, flip: bool = False) -> Image.Image:
    img = Image.new("RGB", (128, 96), (30, 60, 120))
    draw = ImageDraw.Draw(img)
    draw.ellipse((10 + i // 10, 10, 60 + i // 10, 60), fill=(250, 200, 0))
    draw.rectangle((70, 40 - i // 20, 120, 90 - i // 20), fill=(200, 30, 30))
    return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if flip else img


def test_an_image_and_its_resized_jpeg_are_near_and_a_different_one_is_not(tmp_path: Path) -> None:
    _scene(0).save(tmp_path / "a.png")
    buf = io.BytesIO()
    _scene(0).resize((64, 48)).save(buf, format="JPEG", quality=70)
    (tmp_path / "b.jpg").write_bytes(buf.getvalue())
    _scene(0, flip=True).save(tmp_path / "c.png")
    a, b, c = (
        phash.hashes_of(tmp_path / n, t)
        for n, t in (("a.png", "image/png"), ("b.jpg", "image/jpeg"), ("c.png", "image/png"))
    )
    assert len(a) == 16 and phash.distance(a, b) <= 4 < 20 <= phash.distance(a, c)
    assert phash.near_duplicates(a, [("C", c), ("B", b), ("X", None), ("Y", "zz,not-a-hash")]) == ["B"]


def test_a_long_video_is_sought_into_and_a_copy_at_half_the_frame_rate_is_near(tmp_path: Path) -> None:
    frames = [np.asarray(_scene(i)) for i in range(2 * phash.MAX_DECODE_FRAMES)]
    encode_mp4(frames, 24, tmp_path / "long.mp4")
    encode_mp4(frames[::2], 12, tmp_path / "half.mp4")
    encode_mp4([np.asarray(_scene(i, flip=True)) for i in range(40)], 24, tmp_path / "other.mp4")
    long, half, other = (
        phash.split(phash.hashes_of(tmp_path / n, "video/mp4")) for n in ("long.mp4", "half.mp4", "other.mp4")
    )
    assert len(long) == phash.KEY_FRAMES == len(half) and len(set(long)) > 1  # four different moments
    assert phash.similarity(long, half) <= phash.MAX_DISTANCE < phash.similarity(long, other)
