"""encode_mp4, write_poster and probe against real files written with PyAV's bundled libx264."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from reelfoundry.errors import InvalidParameter
from reelfoundry.media import encode_mp4, probe, write_poster


def _frames(count: int, height: int = 48, width: int = 64) -> np.ndarray:
    """A moving ramp, so every frame differs and the encoder has real work."""
    ramp = np.arange(width, dtype=np.uint16)[None, :] + np.arange(height, dtype=np.uint16)[:, None]
    frames = np.stack([(ramp + 9 * i) % 256 for i in range(count)]).astype(np.uint8)
    return np.repeat(frames[..., None], 3, axis=3)


def _top_level_boxes(data: bytes) -> list[str]:
    """Types of the MP4 file's top-level boxes, in file order."""
    boxes, offset = [], 0
    while offset < len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1:
            (size,) = struct.unpack(">Q", data[offset + 8 : offset + 16])
        elif size == 0:
            size = len(data) - offset
        boxes.append(kind.decode("ascii"))
        offset += size
    return boxes


def test_round_trip_keeps_count_size_rate_and_codec(tmp_path: Path) -> None:
    out = tmp_path / "clip.mp4"
    seen: list[int] = []

    info = encode_mp4(_frames(12), 12, out, progress=seen.append)

    assert seen == list(range(1, 13))
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        decoded = list(container.decode(stream))
        assert stream.codec_context.name == "h264"
        assert stream.average_rate == 12
    assert len(decoded) == 12
    assert {(f.width, f.height, f.format.name) for f in decoded} == {(64, 48, "yuv420p")}
    assert (info.num_frames, info.width, info.height, info.fps, info.codec) == (12, 64, 48, 12.0, "h264")
    assert info.duration_s == pytest.approx(1.0)
    assert info.media_type == "video/mp4"
    assert probe(out) == info


def test_index_comes_before_media_data(tmp_path: Path) -> None:
    out = tmp_path / "clip.mp4"
    encode_mp4(_frames(4), 24, out)

    boxes = _top_level_boxes(out.read_bytes())

    assert boxes[0] == "ftyp"
    assert boxes.index("moov") < boxes.index("mdat")


def test_digest_and_size_are_those_of_the_file(tmp_path: Path) -> None:
    out = tmp_path / "clip.mp4"
    info = encode_mp4(_frames(3), 24, out)

    data = out.read_bytes()
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert info.bytes == len(data)


@pytest.mark.parametrize(
    ("frames", "parameter"),
    [
        (_frames(2, width=63), "width"),
        (_frames(2, height=47), "height"),
        (_frames(2).astype(np.float32), "frames"),
        (_frames(2)[..., 0], "frames"),
        ([], "frames"),
        ([_frames(1)[0], _frames(1, width=32)[0]], "frames"),
    ],
    ids=["odd-width", "odd-height", "float", "no-channels", "empty", "size-change"],
)
def test_bad_frames_are_refused_and_leave_no_file(tmp_path: Path, frames: object, parameter: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        encode_mp4(frames, 24, tmp_path / "clip.mp4")  # type: ignore[arg-type]

    assert caught.value.parameter == parameter
    assert list(tmp_path.iterdir()) == []


def test_failed_encode_leaves_the_previous_file_untouched(tmp_path: Path) -> None:
    out = tmp_path / "clip.mp4"
    encode_mp4(_frames(2), 24, out)
    before = out.read_bytes()

    with pytest.raises(InvalidParameter):
        encode_mp4([*_frames(3), np.zeros((48, 64, 3), np.float32)], 24, out)

    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]


def test_poster_is_a_jpeg_of_the_frame(tmp_path: Path) -> None:
    out = tmp_path / "poster.jpg"
    write_poster(_frames(1)[0], out)

    with Image.open(out) as poster:
        assert (poster.format, poster.size) == ("JPEG", (64, 48))
    assert [p.name for p in tmp_path.iterdir()] == ["poster.jpg"]


@pytest.mark.parametrize("kind", ["text", "png"])
def test_probe_refuses_what_is_not_a_video(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"not-a-video.{kind}"
    if kind == "png":
        Image.new("RGB", (8, 8)).save(path)
    else:
        path.write_text("hello")

    with pytest.raises(InvalidParameter) as caught:
        probe(path)

    assert caught.value.parameter == "file"
