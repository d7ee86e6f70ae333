"""produce(): the one path from backend to MP4 + poster, streaming frames."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from reelfoundry.errors import GenerationCancelled
from reelfoundry.execution.produce import produce
from reelfoundry.portfolio.backends.template import TemplateBackend
from reelfoundry.portfolio.base import GenerationParams


def test_produce_writes_video_and_poster(tmp_path: Path) -> None:
    params = GenerationParams(prompt="Poster", num_frames=24, fps=12, width=128, height=72, seed=3)
    steps: list[int] = []
    result = produce(TemplateBackend(), params, tmp_path / "clip.mp4", lambda d, t: steps.append(d))
    assert steps == list(range(1, 25))
    assert result.poster.read_bytes()[:3] == b"\xff\xd8\xff"
    with av.open(str(result.video)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 24
    assert result.media.num_frames == 24 and result.media.width == 128


def test_cancel_mid_render_leaves_no_files(tmp_path: Path) -> None:
    params = GenerationParams(prompt="Stop", num_frames=30, fps=12, width=64, height=64, seed=3)

    def cancel(done: int, total: int) -> None:
        if done == 10:
            raise GenerationCancelled("stop")

    with pytest.raises(GenerationCancelled):
        produce(TemplateBackend(), params, tmp_path / "clip.mp4", cancel)
    assert list(tmp_path.iterdir()) == []


def test_produce_signs_and_describes_the_signed_file(tmp_path: Path) -> None:
    from reelfoundry.media.probe import file_digest
    from reelfoundry.portfolio.backends.template import TEMPLATE_CARD
    from reelfoundry.provenance.credentials import dev_credentials
    from reelfoundry.provenance.manifest import ALGORITHMIC, signing_for, verify

    creds = dev_credentials(tmp_path / "data")
    signing = signing_for(creds, TEMPLATE_CARD, "job-7", "ab" * 32)
    params = GenerationParams(prompt="Signed", num_frames=12, fps=12, width=64, height=64, seed=3)
    out = tmp_path / "out"
    out.mkdir()
    result = produce(TemplateBackend(), params, out / "clip.mp4", signing=signing)
    assert sorted(p.name for p in out.iterdir()) == ["clip.jpg", "clip.mp4"]  # no unsigned copy left
    assert (result.media.bytes, result.media.sha256) == file_digest(result.video)
    report = verify(result.video, creds.trust_anchor_pem)
    assert report.trusted and report.actions[0]["digitalSourceType"] == ALGORITHMIC
    assert report.manifests[0].assertions["com.reelfoundry.generation"]["job_id"] == "job-7"
    boxes = _top_level_boxes(result.video.read_bytes())
    assert boxes.index("moov") < boxes.index("mdat")  # still faststart: playable while it downloads


def _top_level_boxes(data: bytes) -> list[str]:
    import struct

    kinds, i = [], 0
    while i + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[i : i + 8])
        size = struct.unpack(">Q", data[i + 8 : i + 16])[0] if size == 1 else size
        kinds.append(kind.decode("latin-1"))
        if size == 0:
            break
        i += size
    return kinds
