"""The Replicate and fal backends against local fakes of their APIs (tests/fakes/vendors.py).

The fakes stand in for the vendors because their clouds cannot be reached from here: they speak the
documented protocols and misbehave on request (429 with Retry-After, 5xx, stalls, failures, cancels).
Sleeps go through an injected clock, so a Retry-After of minutes costs the test nothing.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from reelfoundry.config import Settings
from reelfoundry.errors import BackendError, ConfigurationError, GenerationCancelled
from reelfoundry.execution.produce import produce
from reelfoundry.finops.meter import Usage, price
from reelfoundry.media import probe
from reelfoundry.portfolio.backends.fal import FalBackend
from reelfoundry.portfolio.backends.replicate import ReplicateBackend
from reelfoundry.portfolio.backends.vendor import VendorBackend, retry_after_s
from reelfoundry.portfolio.base import GenerationParams
from reelfoundry.portfolio.registry import backend_class
from reelfoundry.schema import ModelCard

sys.path.insert(0, str(Path(__file__).parents[2] / "fakes"))
from vendors import FakeFal, FakeReplicate, FakeVendor, Running, tiny_mp4

PRICE = Decimal("0.05")
TOKEN = "r8_test_token"
KEY = "fal-test-key"


class FakeTime:
    """A clock that sleeps by moving itself forward."""

    def __init__(self) -> None:
        self.slept: list[float] = []
        self.offset = 0.0

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.offset += seconds

    def clock(self) -> float:
        return time.monotonic() + self.offset


@pytest.fixture(scope="module")
def mp4(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return tiny_mp4(tmp_path_factory.mktemp("mp4") / "out.mp4")  # 12 frames at 8 fps: 1.5 s


@pytest.fixture(autouse=True)
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Temporary files (the downloads) go to a directory of this test's own, to check nothing is left."""
    where = tmp_path / "tmp"
    where.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(where))
    return where


def leftovers(where: Path) -> list[str]:
    return [p.name for p in where.iterdir() if p.name.startswith("reelfoundry-vendor-")]


@pytest.fixture
def replicate(mp4: bytes) -> Iterator[FakeVendor]:
    with Running(FakeReplicate(output=mp4, key=TOKEN)) as fake:
        yield fake


@pytest.fixture
def fal(mp4: bytes) -> Iterator[FakeVendor]:
    with Running(FakeFal(output=mp4, key=KEY)) as fake:
        yield fake


def settings(fake: FakeVendor | None = None, **overrides: Any) -> Settings:
    url = fake.url if fake is not None else "http://127.0.0.1:9"
    values: dict[str, Any] = {
        "replicate_api_token": TOKEN,
        "replicate_base_url": url,
        "fal_api_key": KEY,
        "fal_queue_url": url,
        "vendor_poll_interval_s": 1.0,
        "vendor_request_timeout_s": 5.0,
        "vendor_timeout_s": 120.0,
        "webhook_allowed_hosts": ["127.0.0.1"],
        **overrides,
    }
    return Settings(**values)


def card(vendor: str, **extra: Any) -> ModelCard:
    options = {"replicate": {"model": "acme/video-1"}, "fal": {"app": "fal-ai/ltx-video"}}[vendor]
    data: dict[str, Any] = {
        "id": f"{vendor}-video",
        "name": f"{vendor} video",
        "backend": vendor,
        "hosting": {"vendor": vendor, "region": "us"},
        "price_usd_per_video_second": str(PRICE),
        "default_num_frames": 12,
        "default_fps": 8,
        "default_width": 32,
        "default_height": 32,
        "max_num_frames": 64,
        "max_width": 64,
        "max_height": 64,
        "speed": {"api": {"s_per_step_mpf": 0.0, "overhead_s": 4.0, "source": "assumed"}},
        "options": options,
        **extra,
    }
    return ModelCard.model_validate(data)


def backend(
    vendor: str, fake: FakeVendor | None, clock: FakeTime, card_: ModelCard | None = None, **overrides: Any
) -> VendorBackend:
    cls = ReplicateBackend if vendor == "replicate" else FalBackend
    made = cls(card_ or card(vendor), settings(fake, **overrides))
    made.sleep, made.clock, made.jitter = clock.sleep, clock.clock, lambda: 1.0
    return made


PARAMS = GenerationParams(
    prompt="a red kite", num_frames=12, fps=8, width=32, height=32, seed=42, negative_prompt="blurry"
)


def test_both_are_registered_by_name() -> None:
    assert backend_class("replicate") is ReplicateBackend
    assert backend_class("fal") is FalBackend


def test_replicate_runs_a_prediction_with_mapped_inputs(
    replicate: FakeVendor, tmp_path: Path, private_tmp: Path
) -> None:
    mapped = card(
        "replicate",
        options={
            "model": "acme/video-1",
            "input": {"resolution": "480p", "prompt": "overridden"},
            "input_map": {"num_frames": "num_frames", "duration_s": "duration", "negative_prompt": None},
        },
    )
    steps: list[tuple[int, int]] = []
    made = backend("replicate", replicate, FakeTime(), mapped)
    produced = produce(made, PARAMS, tmp_path / "out.mp4", lambda d, t: steps.append((d, t)))
    (submit,) = replicate.of("submit")
    assert submit.path == "/v1/models/acme/video-1/predictions"
    assert submit.headers["authorization"] == f"Bearer {TOKEN}"
    assert submit.body == {
        "input": {"resolution": "480p", "prompt": "a red kite", "seed": 42, "num_frames": 12, "duration": 1.5}
    }
    assert len(replicate.of("poll")) == 3  # two "processing", then "succeeded"
    assert not replicate.of("cancel")
    assert replicate.of("output")[0].headers.get("authorization") is None  # the key never goes to the output URL
    # Progress: one report per poll, rising, then done.
    assert steps[-1] == (100, 100) and [d for d, _ in steps] == sorted(d for d, _ in steps)
    # The vendor's MP4 is kept as it is: same frames, no second encode.
    assert produced.media.num_frames == 12 and produced.media.duration_s == pytest.approx(1.5)
    assert produced.poster.exists()
    assert produced.info["vendor_usd"] == str((PRICE * Decimal("1.5")).quantize(Decimal("1e-10")))
    assert produced.info["vendor"] == "replicate" and produced.info["vendor_job"] == replicate.of("poll")[0].path[16:]
    assert leftovers(private_tmp) == []


def test_replicate_runs_a_pinned_version(replicate: FakeVendor) -> None:
    pinned = card(
        "replicate",
        options={"version": "acme/video-1:5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa"},
    )
    output = backend("replicate", replicate, FakeTime(), pinned).generate(PARAMS)
    (submit,) = replicate.of("submit")
    assert submit.path == "/v1/predictions"
    assert submit.body["version"].endswith("ccaa") and submit.body["input"]["prompt"] == "a red kite"
    assert output.video is not None and output.video.exists()
    output.video.unlink()


def test_fal_runs_a_queued_image_to_video_request(fal: FakeVendor, tmp_path: Path, private_tmp: Path) -> None:
    image = tmp_path / "first.png"
    Image.new("RGB", (32, 32), "red").save(image)
    i2v = card(
        "fal",
        task="image-to-video",
        options={"app": "fal-ai/ltx-video/image-to-video", "input_map": {"fps": "frame_rate"}},
    )
    params = GenerationParams(**{**PARAMS.__dict__, "inputs": (image,)})
    produced = produce(backend("fal", fal, FakeTime(), i2v), params, tmp_path / "out.mp4")
    (submit,) = fal.of("submit")
    assert submit.path == "/fal-ai/ltx-video/image-to-video"
    assert submit.headers["authorization"] == f"Key {KEY}"
    body = submit.body
    assert body["prompt"] == "a red kite" and body["negative_prompt"] == "blurry" and body["seed"] == 42
    assert body["frame_rate"] == 8 and body["image_url"].startswith("data:image/png;base64,")
    # Status and result name the app without its endpoint sub-path.
    assert {s.path.split("/requests/")[0] for s in fal.of("poll") + fal.of("result")} == {"/fal-ai/ltx-video"}
    assert len(fal.of("poll")) == 3 and len(fal.of("result")) == 1
    assert produced.media.num_frames == 12
    assert Decimal(str(produced.info["vendor_usd"])) == PRICE * Decimal("1.5")
    assert leftovers(private_tmp) == []


@pytest.mark.parametrize("vendor", ["replicate", "fal"])
def test_a_429_waits_what_retry_after_says(vendor: str, request: pytest.FixtureRequest) -> None:
    fake: FakeVendor = request.getfixturevalue(vendor)
    fake.fault("submit", 429, retry_after="7")
    fake.fault("poll", 429, retry_after="3")
    clock = FakeTime()
    output = backend(vendor, fake, clock).generate(PARAMS)
    assert len(fake.of("submit")) == 2
    assert 7.0 in clock.slept and 3.0 in clock.slept
    assert output.video is not None
    output.video.unlink()


def test_retry_after_is_seconds_or_a_date_and_capped(replicate: FakeVendor) -> None:
    from datetime import UTC, datetime

    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_s("12", now) == 12.0
    assert retry_after_s("Wed, 01 Jan 2025 12:00:30 GMT", now) == 30.0
    assert retry_after_s("Wed, 01 Jan 2025 11:00:00 GMT", now) == 0.0
    assert retry_after_s("soon", now) is None and retry_after_s("²", now) is None
    replicate.fault("poll", 429, retry_after="3600")
    clock = FakeTime()
    output = backend("replicate", replicate, clock, vendor_timeout_s=600).generate(PARAMS)
    assert 60.0 in clock.slept and 3600.0 not in clock.slept  # an hour is not waited: at most a minute
    assert output.video is not None
    output.video.unlink()


def test_5xx_is_retried_with_backoff_then_succeeds(fal: FakeVendor) -> None:
    fal.fault("poll", 500, times=2)
    fal.fault("result", 503)
    clock = FakeTime()
    output = backend("fal", fal, clock, vendor_poll_interval_s=1.25).generate(PARAMS)
    backoffs = [s for s in clock.slept if s != 1.25]  # 1.25 is the poll interval
    assert backoffs == [0.5, 1.0, 0.5]  # doubling from 0.5 s (jitter pinned to its top), reset per request
    assert output.video is not None
    output.video.unlink()


@pytest.mark.parametrize("vendor", ["replicate", "fal"])
def test_5xx_without_end_fails_the_job_and_cancels_it_there(vendor: str, request: pytest.FixtureRequest) -> None:
    fake: FakeVendor = request.getfixturevalue(vendor)
    fake.fault("poll", 502, times=5)
    with pytest.raises(BackendError, match="failed 5 times; last: HTTP 502"):
        backend(vendor, fake, FakeTime()).generate(PARAMS)
    assert len(fake.of("poll")) == 5 and len(fake.of("cancel")) == 1


def test_a_500_on_submission_is_not_repeated(replicate: FakeVendor) -> None:
    # The vendor may have taken the job: a second submission could be charged twice.
    replicate.fault("submit", 500)
    with pytest.raises(BackendError, match="HTTP 500"):
        backend("replicate", replicate, FakeTime()).generate(PARAMS)
    assert len(replicate.of("submit")) == 1


def test_a_stalled_answer_times_out(fal: FakeVendor) -> None:
    fal.fault("poll", stall_s=3.0, times=5)
    started = time.monotonic()
    with pytest.raises(BackendError, match=r"no answer within 0\.2 s"):
        backend("fal", fal, FakeTime(), vendor_request_timeout_s=0.2).generate(PARAMS)
    assert time.monotonic() - started < 3.0  # each attempt waited its timeout, not the stall
    assert len(fal.of("cancel")) == 1


def test_a_job_past_its_deadline_is_cancelled_there(replicate: FakeVendor) -> None:
    replicate.polls_before_done = 10_000
    with pytest.raises(BackendError, match="no result within 10 s"):
        backend("replicate", replicate, FakeTime(), vendor_timeout_s=10).generate(PARAMS)
    assert len(replicate.of("cancel")) == 1
    assert 5 <= len(replicate.of("poll")) <= 11  # one a second (the fake clock), for 10 s


@pytest.mark.parametrize("vendor", ["replicate", "fal"])
def test_cancel_mid_poll_cancels_at_the_vendor(vendor: str, request: pytest.FixtureRequest) -> None:
    fake: FakeVendor = request.getfixturevalue(vendor)
    fake.polls_before_done = 10
    calls: list[int] = []

    def callback(done: int, total: int) -> None:
        calls.append(done)
        if len(calls) == 3:
            raise GenerationCancelled("cancelled by the test")

    with pytest.raises(GenerationCancelled):
        backend(vendor, fake, FakeTime()).generate(PARAMS, callback)
    (cancel,) = fake.of("cancel")
    assert cancel.method == ("POST" if vendor == "replicate" else "PUT")
    assert cancel.path.endswith("/cancel") and all(job.cancelled for job in fake.jobs.values())
    assert not fake.of("output")


@pytest.mark.parametrize("vendor", ["replicate", "fal"])
def test_a_failed_job_fails_with_the_vendors_reason(vendor: str, request: pytest.FixtureRequest) -> None:
    fake: FakeVendor = request.getfixturevalue(vendor)
    fake.fail_with = "CUDA out of memory on the vendor's side"
    with pytest.raises(BackendError, match="CUDA out of memory"):
        backend(vendor, fake, FakeTime()).generate(PARAMS)
    assert not fake.of("cancel")  # it ended there: nothing to cancel


def test_an_output_url_at_a_private_address_is_refused(replicate: FakeVendor, private_tmp: Path) -> None:
    # Without an allow-list entry, 127.0.0.1 is loopback: the output URL a vendor returns is hostile input.
    with pytest.raises(BackendError, match=r"refused to fetch the output.*loopback"):
        backend("replicate", replicate, FakeTime(), webhook_allowed_hosts=[]).generate(PARAMS)
    assert not replicate.of("output") and leftovers(private_tmp) == []


def test_an_output_url_at_a_metadata_address_is_refused(replicate: FakeVendor) -> None:
    replicate.output_url = "http://169.254.169.254/latest/meta-data/"
    with pytest.raises(BackendError, match="link-local"):
        backend("replicate", replicate, FakeTime()).generate(PARAMS)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_output_over_the_size_cap_is_refused(fal: FakeVendor, private_tmp: Path, chunked: bool) -> None:
    fal.chunked = chunked  # declared too large, or found too large while it arrives
    assert len(fal.output) > 1024
    with pytest.raises(BackendError, match=r"at most 1,024 are fetched"):
        backend("fal", fal, FakeTime(), vendor_max_output_bytes=1024).generate(PARAMS)
    assert leftovers(private_tmp) == []


def test_an_output_that_is_not_a_video_is_refused(replicate: FakeVendor, private_tmp: Path) -> None:
    replicate.output = b"<html>definitely not a video</html>" * 100
    with pytest.raises(BackendError, match="not a video"):
        backend("replicate", replicate, FakeTime()).generate(PARAMS)
    assert leftovers(private_tmp) == []


@pytest.mark.parametrize(("vendor", "variable"), [("replicate", "REPLICATE_API_TOKEN"), ("fal", "FAL_API_KEY")])
def test_a_missing_key_names_the_setting(vendor: str, variable: str) -> None:
    made = backend(vendor, None, FakeTime(), replicate_api_token=None, fal_api_key=None)
    with pytest.raises(ConfigurationError, match=f"REELFOUNDRY_{variable} is not set"):
        made.generate(PARAMS)


def test_a_refused_key_is_a_configuration_error(replicate: FakeVendor) -> None:
    with pytest.raises(ConfigurationError, match=r"refused the API key.*REELFOUNDRY_REPLICATE_API_TOKEN"):
        backend("replicate", replicate, FakeTime(), replicate_api_token="wrong").generate(PARAMS)


def test_cards_must_say_they_are_hosted_by_the_vendor() -> None:
    # A self-hosted card may hold confidential data: it must never reach a vendor through these backends.
    local = ModelCard.model_validate({**card("replicate").model_dump(), "hosting": "self-hosted"})
    with pytest.raises(ConfigurationError, match="hosting is self-hosted"):
        ReplicateBackend(local)
    with pytest.raises(ConfigurationError, match="'model'"):
        ReplicateBackend(card("replicate", options={}))
    with pytest.raises(ConfigurationError, match="unknown fal options"):
        FalBackend(card("fal", options={"app": "fal-ai/x", "webhook": "http://x"}))
    with pytest.raises(ConfigurationError, match="input_map names unknown"):
        FalBackend(card("fal", options={"app": "fal-ai/x", "input_map": {"colour": "color"}}))


def test_the_vendor_charge_is_the_compute_cost() -> None:
    usd = PRICE * Decimal("1.5")
    assert price(Usage(vendor_usd=usd), None).compute_usd == usd
    assert price(Usage(vendor_usd=usd, stored_bytes=0), None).total_usd == usd


def test_a_finished_mp4_is_probed_as_it_is(replicate: FakeVendor, tmp_path: Path) -> None:
    output = backend("replicate", replicate, FakeTime()).generate(PARAMS)
    assert output.video is not None
    media = probe(output.video)
    assert (media.media_type, media.num_frames, media.width) == ("video/mp4", 12, 32)
    assert output.num_frames == 12 and output.fps == 8
    output.video.unlink()


def _mkv(path: Path, frames: int = 10, fps: int = 10) -> bytes:
    import av
    import numpy as np

    with av.open(str(path), "w", format="matroska") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for i in range(frames):
            image = np.full((32, 32, 3), i * 20, dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return path.read_bytes()


def test_an_output_that_is_not_an_mp4_is_decoded_and_encoded(
    fal: FakeVendor, tmp_path: Path, private_tmp: Path
) -> None:
    fal.output = _mkv(tmp_path / "out.mkv")
    output = backend("fal", fal, FakeTime()).generate(PARAMS)
    assert output.video is None and output.fps == 10
    produced = produce(backend("fal", fal, FakeTime()), PARAMS, tmp_path / "out.mp4")
    assert (produced.media.media_type, produced.media.codec, produced.media.num_frames) == ("video/mp4", "h264", 10)
    assert produced.info["vendor_usd"] == str((PRICE * Decimal("1.0")).quantize(Decimal("1e-10")))
    del output  # its frames were never read: dropping them removes the download
    assert leftovers(private_tmp) == []
