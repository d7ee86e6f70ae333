"""What a job will cost, estimated at admission: the amount budgets reserve until the job ends.

Device-seconds are guessed from the backend's speed (a card may state its own in
``options["estimate_s"] = {"fixed": s, "per_frame_step": s}``), times a safety factor, capped by the job
timeout. Storage is the raw frame size over a compression ratio. The estimate covers one attempt and
no idle time (both depend on what happens later), so a retried job, or one that follows a quiet spell,
can end above its reservation; the next admission sees the real figure.
"""

from __future__ import annotations

from decimal import Decimal

from reelfoundry.finops.meter import Rates, Usage, price
from reelfoundry.portfolio.base import GenerationParams
from reelfoundry.schema import ModelCard

#: Seconds of device time by model id, else backend: a fixed part (model load, encode, sign) and a part per
#: frame × denoising step (per frame for backends that do not denoise). Measured on the 2-core CPU machine
#: for template and builtin (benchmarks/RESULTS.md); a conservative guess for other diffusers models.
SPEED = {
    "template": (1.0, 0.01),
    "builtin": (6.0, 0.01),
    "diffusers": (30.0, 0.05),
}
DEFAULT_SPEED = (30.0, 0.1)
SAFETY = Decimal("1.5")
#: H.264 at these sizes keeps about one byte in 50 of raw RGB.
COMPRESSION = 50
#: A vendor charge is kept to the millionth of a dollar.
USD_PLACES = Decimal("0.000001")


def estimate_seconds(card: ModelCard, params: GenerationParams, device: str | None = None) -> float:
    """Device-seconds one attempt of this job should take (on ``device`` when the card states its speed there)."""
    speed = card.speed.get(device or "") if device else None
    if speed is not None:
        return speed.seconds(params.num_frames, params.width, params.height, params.steps or 1)
    hint = card.options.get("estimate_s")
    fixed, per = (
        (float(hint["fixed"]), float(hint["per_frame_step"]))
        if isinstance(hint, dict) and {"fixed", "per_frame_step"} <= hint.keys()
        else SPEED.get(card.id) or SPEED.get(card.backend, DEFAULT_SPEED)
    )
    steps = params.steps or 1
    return fixed + per * params.num_frames * steps


def vendor_usd(card: ModelCard, params: GenerationParams) -> Decimal:
    """What a vendor API charges for the job: its price per second of video × the video's seconds."""
    assert card.price_usd_per_video_second is not None
    return (card.price_usd_per_video_second * Decimal(params.num_frames) / Decimal(params.fps)).quantize(USD_PLACES)


def estimate_usd(
    card: ModelCard, params: GenerationParams, rates: Rates, *, timeout_s: float, device: str | None = None
) -> Decimal:
    """The reservation for one job: estimated device time (× safety, ≤ the timeout) and storage, priced; for a
    vendor API its price (plus storage)."""
    stored = params.width * params.height * 3 * params.num_frames // COMPRESSION
    if card.vendor is not None:
        return vendor_usd(card, params) + price(Usage(stored_bytes=stored), rates).total_usd
    seconds = min(float(Decimal(str(estimate_seconds(card, params, device))) * SAFETY), timeout_s)
    return price(Usage(device_seconds=seconds, stored_bytes=stored), rates).total_usd
