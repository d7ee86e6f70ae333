"""NRES: one fixed, versioned prompt suite run through any model's backend, scored for fidelity, time and cost.

The suite (version :data:`SUITE_VERSION`) is a list of prompts of the procedural world (one coloured shape
moving over a background: ``training/data.py``), each with its own seed, drawn from a fixed seed; every model
gets the same prompts and seeds, at the size the suite asks for (``quick``: the closest a card allows to 16
frames of 64×64 at 8 fps; ``standard``: the card's default size, so its time and cost are the ones jobs see).

Measured (:class:`NresResult`):

- fidelity: the Fréchet distance ``FD`` between features of the generated clips and of the reference clips
  (the procedural clips of the suite's own prompts, or a DAM collection's videos), every clip fitted to
  16×64×64 first; features from the built-in probe by default, or an I3D / VideoMAE checkpoint.
  ``fidelity = exp(-FD / nres_fd_scale)``, in (0, 1]. Also the weight-free temporal consistency and flicker
  of the generated clips, beside the reference's. Videos are decoded at most 128 px on their long side (the
  decoder scales them), so a large clip never sits in memory at full size.
- time: seconds per clip and per second of video, warm (the mean over clips after the first) and cold (the
  backend's set-up plus the first clip, which loads the weights);
- device: peak memory (see :mod:`reelfoundry.evaluation.runner`), device-seconds, energy (the FinOps meter);
- cost per clip at this node's rates (device-seconds × $/device-hour × share; a vendor API: its price per
  second of video).

The score::

    NRES = fidelity / (1 + (t / t0) × (c / c0))

with ``t`` the warm seconds per second of video, ``c`` the dollars per second of video, ``t0`` =
``nres_reference_s_per_video_s`` (1 s) and ``c0`` = ``nres_reference_usd_per_video_s`` ($0.01). It is the
fidelity when time × cost is negligible, half of it when time × cost equals t0 × c0, and falls towards 0 as
either grows. The router's quality score is the fidelity (the router weighs time and cost itself, per request).
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import av
import numpy as np

from reelfoundry.config import Settings
from reelfoundry.errors import InvalidParameter, ReelFoundryError
from reelfoundry.evaluation.features import extract, fit_clip, flicker, load_extractor, temporal_consistency
from reelfoundry.evaluation.protocol import frechet_distance
from reelfoundry.evaluation.runner import RunPlan, RunResult, run
from reelfoundry.finops.catalog import load_catalog
from reelfoundry.finops.energy import EnergySpec
from reelfoundry.finops.estimate import vendor_usd
from reelfoundry.finops.meter import Rates, Usage, price, usd_text
from reelfoundry.finops.rates import worker_rates
from reelfoundry.portfolio.base import GenerationParams, check_card_limits
from reelfoundry.portfolio.registry import backend_class
from reelfoundry.schema import ModelCard
from reelfoundry.training.data import ALL_COMBOS, canonical_caption, random_spec, render_clip

#: Changes whenever the prompts, seeds, sizes or scoring change: results of different versions do not compare.
SUITE_VERSION = "nres-1"
#: The seed the suite's prompts, their seeds and the reference are drawn from (part of the version).
SUITE_SEED = 2026
#: Frames decoded from one generated or reference video at most, and their longest side (the scores read 64×64
#: fitted clips and frame-to-frame luminance: more pixels only cost memory).
MAX_DECODED_FRAMES = 512
MAX_DECODED_SIDE = 128
SuiteName = Literal["quick", "standard"]


@dataclass(frozen=True)
class SuiteSpec:
    """One suite: how many prompts, and the size it asks for (None: the card's default)."""

    name: SuiteName
    prompts: int
    num_frames: int | None
    width: int | None
    height: int | None
    fps: int | None


SUITES: dict[str, SuiteSpec] = {
    "quick": SuiteSpec("quick", 8, 16, 64, 64, 8),
    "standard": SuiteSpec("standard", 48, None, None, None, None),
}


@dataclass(frozen=True)
class SuitePrompt:
    """One prompt of the suite, its seed, and the procedural clip that answers it."""

    text: str
    seed: int
    combo: tuple[str, str, str]
    background: str

    def reference(self, rng_seed: int) -> np.ndarray:
        """The procedural clip of this prompt (its layout jittered by ``rng_seed``)."""
        spec = random_spec(np.random.default_rng([rng_seed, self.seed]), self.combo)
        return render_clip(replace(spec, background=self.background))


def suite_prompts(suite: SuiteName, seed: int = SUITE_SEED) -> list[SuitePrompt]:
    """The suite's prompts and seeds: the same list for the same suite and seed, on every machine."""
    spec = SUITES[suite]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(ALL_COMBOS))[: spec.prompts]
    prompts = []
    for i, k in enumerate(order):
        combo = ALL_COMBOS[int(k)]
        background = random_spec(rng, combo).background
        prompts.append(SuitePrompt(canonical_caption(*combo, background), seed * 1000 + i, combo, background))
    return prompts


def suite_params(card: ModelCard, suite: SuiteName, prompts: Sequence[SuitePrompt]) -> list[GenerationParams]:
    """The generation parameters of each prompt for this card: the suite's size where the card allows it (the
    nearest frame count its frame rule allows), else the card's default size."""
    spec = SUITES[suite]
    backend = backend_class(card.backend)(card)
    frames, width, height, fps = card.default_num_frames, card.default_width, card.default_height, card.default_fps
    if spec.num_frames is not None and spec.width is not None and spec.height is not None and spec.fps is not None:
        wanted = _nearest_frames(card, spec.num_frames)
        trial = (
            wanted,
            min(spec.width, card.max_width),
            min(spec.height, card.max_height),
            min(spec.fps, card.max_fps),
        )
        try:
            check_card_limits(card, trial[0], trial[1], trial[2])
            backend.check_inputs(_params(card, prompts[0], *trial))
            frames, width, height, fps = trial
        except ReelFoundryError:
            pass  # the card's own default size, which it must accept
    return [_params(card, p, frames, width, height, fps) for p in prompts]


def _nearest_frames(card: ModelCard, target: int) -> int:
    m, o = card.frame_multiple, card.frame_offset
    allowed = [k * m + o for k in range(0, card.max_num_frames // m + 2) if card.min_num_frames <= k * m + o]
    allowed = [n for n in allowed if n <= card.max_num_frames] or [card.default_num_frames]
    return min(allowed, key=lambda n: (abs(n - target), n))


def _params(card: ModelCard, prompt: SuitePrompt, frames: int, width: int, height: int, fps: int) -> GenerationParams:
    return GenerationParams(
        prompt=prompt.text,
        num_frames=frames,
        fps=fps,
        width=width,
        height=height,
        seed=prompt.seed,
        steps=card.default_steps,
        guidance_scale=card.default_guidance_scale,
    )


@dataclass(frozen=True)
class ClipStats:
    """What the scores need of one clip: the clip fitted to 16×64×64, its temporal consistency and flicker."""

    fitted: np.ndarray
    temporal_consistency: float
    flicker: float

    @classmethod
    def of(cls, clip: np.ndarray) -> ClipStats:
        """The stats of a uint8 clip (T, H, W, 3)."""
        return cls(fit_clip(clip), temporal_consistency(clip), flicker(clip))


@dataclass(frozen=True)
class Reference:
    """The clips fidelity is measured against (their stats), and what they are."""

    name: str
    clips: list[ClipStats]


def procedural_reference(prompts: Sequence[SuitePrompt], seed: int = SUITE_SEED) -> Reference:
    """The procedural clips of the suite's own prompts: the same count and the same content the model is asked
    for, so a model that draws exactly what was asked scores a distance near 0 (against a larger, unmatched set
    the small-sample bias of the covariances alone keeps the distance high for any model)."""
    clips = [ClipStats.of(p.reference(seed)) for p in prompts]
    return Reference(f"procedural ({len(clips)} clips of the suite's prompts, seed {seed})", clips)


def video_reference(name: str, videos: Sequence[Path]) -> Reference:
    """Reference clips from video files (a DAM collection's); InvalidParameter when fewer than two decode."""
    clips = []
    for path in videos:
        try:
            clips.append(ClipStats.of(read_frames(path)))
        except (av.FFmpegError, ValueError):
            continue
    if len(clips) < 2:
        raise InvalidParameter("reference", f"the reference {name!r} has {len(clips)} decodable videos; at least 2")
    return Reference(f"{name} ({len(clips)} videos)", clips)


def read_frames(path: Path, limit: int = MAX_DECODED_FRAMES, max_side: int = MAX_DECODED_SIDE) -> np.ndarray:
    """The frames of a video as uint8 RGB (T, H, W, 3): at most ``limit`` of them, scaled (by the decoder) so
    that the long side is at most ``max_side``; a 4K clip never becomes full-size pictures in memory."""
    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            scale = min(1.0, max_side / max(frame.width, frame.height))
            if scale < 1.0:
                width, height = max(2, round(frame.width * scale)), max(2, round(frame.height * scale))
                frame = frame.reformat(width=width, height=height)
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) >= limit:
                break
    if not frames:
        raise ValueError(f"{path.name} has no decodable frame")
    return np.stack(frames)


def fidelity_score(fd: float, scale: float) -> float:
    """exp(-FD / scale): 1 for a distance of 0, 1/e at ``scale``."""
    return math.exp(-max(fd, 0.0) / scale)


def nres_score(fidelity: float, s_per_video_s: float, usd_per_video_s: Decimal, t0: float, c0: Decimal) -> float:
    """NRES = fidelity / (1 + (t / t0) × (c / c0)) (see the module)."""
    load = (s_per_video_s / t0) * float(usd_per_video_s / c0)
    return fidelity / (1.0 + max(load, 0.0))


@dataclass
class NresResult:
    """One run of the suite on one model (``reelfoundry eval model --json``)."""

    model: str
    model_version: str
    suite: str
    suite_version: str
    date: str
    clips: int
    clips_failed: int
    num_frames: int
    width: int
    height: int
    fps: int
    steps: int | None
    fidelity: float
    frechet_distance: float | None
    feature_extractor: str
    reference: str
    temporal_consistency: float | None
    flicker: float | None
    reference_temporal_consistency: float
    reference_flicker: float
    seconds_per_clip: float | None
    seconds_per_video_second: float | None
    cold_seconds_per_clip: float | None
    cold_seconds_per_video_second: float | None
    peak_memory_mb: float
    peak_memory_method: str
    device: str
    device_seconds: float
    energy_kwh: str
    energy_method: str
    cost_per_clip_usd: str | None
    cost_per_video_second_usd: str | None
    rates: dict[str, Any]
    nres: float
    nres_formula: str
    network_attempts: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """As a JSON-ready dict."""
        return asdict(self)


@dataclass
class NresRun:
    """A result with what onboarding inspects further: the parameters asked for and the child's raw run."""

    result: NresResult
    params: list[GenerationParams]
    run: RunResult


def node_rates(settings: Settings) -> Rates:
    """This node's rates (its worker settings, priced from the catalog): what a clip costs here."""
    return worker_rates(settings, load_catalog())


def evaluate_model(
    card: ModelCard,
    settings: Settings,
    suite: SuiteName = "quick",
    *,
    reference: Reference | None = None,
    features: Path | None = None,
    seed: int = SUITE_SEED,
    repeat_first: bool = False,
    work_dir: Path | None = None,
    now: datetime | None = None,
) -> NresRun:
    """Run the suite on ``card``'s backend (in a guarded child process for a self-hosted model) and score it.

    ``work_dir`` keeps the generated MP4s (onboarding reads them); without it they go to a temporary folder."""
    if suite not in SUITES:
        raise InvalidParameter("suite", f"suite must be one of {sorted(SUITES)}, got {suite!r}")
    prompts = suite_prompts(suite, seed)
    params = suite_params(card, suite, prompts)
    rates = node_rates(settings)
    reference = reference or procedural_reference(prompts, seed)
    extractor, extractor_name = load_extractor(features)
    energy = EnergySpec(
        device=rates.device,
        share=float(rates.device_share),
        tdp_w=float(rates.tdp_w),
        gpu_index=None if rates.device == "cpu" else 0,
    )
    with tempfile.TemporaryDirectory(prefix="nres-") as scratch:
        out_dir = (work_dir or Path(scratch)) / card.id
        plan = RunPlan(
            card=card.model_dump(mode="json"),
            items=params,
            out_dir=out_dir,
            # A vendor API model needs the network to run at all: its check is its hosting and data classes.
            guard_network=card.self_hosted,
            energy=energy if card.self_hosted else None,
            repeat_first=repeat_first,
        )
        raw = run(plan, settings.nres_timeout_s)
        generated = _decode(raw)
    result = _score(card, suite, params, raw, generated, reference, extractor, extractor_name, rates, settings, now)
    return NresRun(result, params, raw)


def _decode(raw: RunResult) -> dict[int, ClipStats]:
    """The stats of each clip the child wrote; a clip whose file does not decode gets its error instead."""
    stats = {}
    for clip in raw.clips:
        if clip.video is None:
            continue
        try:
            stats[clip.index] = ClipStats.of(read_frames(clip.video))
        except (OSError, ValueError, av.FFmpegError) as exc:
            clip.error, clip.video = f"its video does not decode: {exc}", None
    return stats


def _score(
    card: ModelCard,
    suite: SuiteName,
    params: list[GenerationParams],
    raw: RunResult,
    generated: dict[int, ClipStats],
    reference: Reference,
    extractor: Any,
    extractor_name: str,
    rates: Rates,
    settings: Settings,
    now: datetime | None,
) -> NresResult:
    first = params[0]
    video_s = first.num_frames / first.fps
    errors = [f"clip {c.index}: {c.error}" for c in raw.clips if c.error] + ([raw.error] if raw.error else [])
    ok = [c for c in raw.clips if c.index in generated]
    ref_tc = float(np.mean([c.temporal_consistency for c in reference.clips]))
    ref_flicker = float(np.mean([c.flicker for c in reference.clips]))
    fd: float | None = None
    fidelity = 0.0
    tc = fl = None
    if len(ok) >= 2:
        mine = [generated[c.index] for c in ok]
        fd = frechet_distance(
            extract(extractor, [c.fitted for c in mine]), extract(extractor, [c.fitted for c in reference.clips])
        )
        fidelity = fidelity_score(fd, settings.nres_fd_scale)
        tc = float(np.mean([c.temporal_consistency for c in mine]))
        fl = float(np.mean([c.flicker for c in mine]))
    elif ok:
        errors.append("only one clip was generated: a Fréchet distance needs at least two")
    seconds = [c.seconds for c in raw.clips if c.video is not None]
    warm_list = seconds[1:] or seconds[:1]
    warm = float(np.mean(warm_list)) if warm_list else None
    cold = raw.setup_seconds + seconds[0] if seconds else None
    device_seconds = float(sum(c.seconds for c in raw.clips)) + raw.setup_seconds
    cost_clip: Decimal | None = None
    if card.vendor is not None:
        cost_clip = vendor_usd(card, first)
    elif warm is not None:
        cost_clip = price(Usage(device_seconds=warm), rates).compute_usd
    cost_vs = cost_clip / Decimal(str(video_s)) if cost_clip is not None else None
    s_per_vs = warm / video_s if warm is not None else None
    nres = (
        nres_score(
            fidelity,
            s_per_vs,
            cost_vs,
            settings.nres_reference_s_per_video_s,
            settings.nres_reference_usd_per_video_s,
        )
        if s_per_vs is not None and cost_vs is not None
        else 0.0
    )
    energy_kwh = price(Usage(energy_j=raw.energy_j), rates).energy_kwh
    return NresResult(
        model=card.id,
        model_version=card.version,
        suite=suite,
        suite_version=SUITE_VERSION,
        date=(now or datetime.now(UTC)).date().isoformat(),
        clips=len(ok),
        clips_failed=len(params) - len(ok),
        num_frames=first.num_frames,
        width=first.width,
        height=first.height,
        fps=first.fps,
        steps=first.steps,
        fidelity=round(fidelity, 6),
        frechet_distance=round(fd, 6) if fd is not None else None,
        feature_extractor=extractor_name,
        reference=reference.name,
        temporal_consistency=_round(tc),
        flicker=_round(fl),
        reference_temporal_consistency=round(ref_tc, 6),
        reference_flicker=round(ref_flicker, 6),
        seconds_per_clip=_round(warm),
        seconds_per_video_second=_round(s_per_vs),
        cold_seconds_per_clip=_round(cold),
        cold_seconds_per_video_second=_round(cold / video_s if cold is not None else None),
        peak_memory_mb=round(raw.peak_memory_mb, 1),
        peak_memory_method=raw.peak_memory_method,
        device=rates.device if card.self_hosted else f"{card.vendor} API",
        device_seconds=round(device_seconds, 3),
        energy_kwh=format(energy_kwh, "f"),
        energy_method=raw.energy_method,
        cost_per_clip_usd=usd_text(cost_clip) if cost_clip is not None else None,
        cost_per_video_second_usd=usd_text(cost_vs) if cost_vs is not None else None,
        rates={
            "provider": rates.provider,
            "device": rates.device,
            "pricing_model": rates.pricing_model,
            "usd_per_device_hour": str(rates.usd_per_device_hour),
            "device_share": str(rates.device_share),
            "catalog_version": rates.catalog_version,
        },
        nres=round(nres, 6),
        nres_formula=(
            f"fidelity / (1 + (s per video-s / {settings.nres_reference_s_per_video_s:g}) × "
            f"($ per video-s / {settings.nres_reference_usd_per_video_s}))"
        ),
        network_attempts=raw.network_attempts,
        errors=errors,
    )


def _round(value: float | None) -> float | None:
    return round(value, 6) if value is not None else None
