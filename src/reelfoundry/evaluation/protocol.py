"""The standard test protocol for the built-in model: a fixed prompt suite, adherence, FVD-style distance, speed.

Adherence is judged by the attribute probe on clips generated for prompts whose
(colour, shape, motion) combination never appeared in training. The Fréchet distance
compares feature statistics of generated clips with real held-out procedural clips;
the feature extractor is pluggable (the probe by default, or a TorchScript model such
as an I3D export from a local file).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from reelfoundry.evaluation.probe import HEADS, AttributeProbe, predict, to_tensor
from reelfoundry.training.data import (
    COLOURS,
    HELD_OUT,
    TRAIN_COMBOS,
    canonical_caption,
    heldout_samples,
    random_caption,
    random_spec,
)


@dataclass(frozen=True)
class SuitePrompt:
    """One prompt of the suite and what it asks for."""

    text: str
    colour: str
    shape: str
    motion: str
    held_out: bool


def suite(per_heldout_combo: int = 6, train_prompts: int = 72, seed: int = 2026) -> list[SuitePrompt]:
    """The fixed suite (216 prompts by default): every held-out combination in several wordings, plus training ones."""
    rng = np.random.default_rng(seed)
    prompts = []
    for combo in sorted(HELD_OUT):
        for k in range(per_heldout_combo):
            spec = random_spec(rng, combo)
            text = canonical_caption(*combo, spec.background) if k == 0 else random_caption(spec, rng)
            prompts.append(SuitePrompt(text, *combo, held_out=True))
    for i in rng.permutation(len(TRAIN_COMBOS))[:train_prompts]:
        combo = TRAIN_COMBOS[int(i)]
        background = str(rng.choice([c for c in COLOURS if c != combo[0]]))
        prompts.append(SuitePrompt(canonical_caption(*combo, background), *combo, held_out=False))
    return prompts


class FeatureExtractor(Protocol):
    """Clips (B, T, H, W, 3) uint8 → features (B, D)."""

    def __call__(self, clips: np.ndarray) -> np.ndarray: ...


class ProbeFeatures:
    """The attribute probe's pooled features."""

    def __init__(self, probe: AttributeProbe) -> None:
        self.probe = probe

    @torch.no_grad()
    def __call__(self, clips: np.ndarray) -> np.ndarray:
        return np.concatenate(
            [self.probe.features(to_tensor(clips[i : i + 64])).numpy() for i in range(0, len(clips), 64)]
        )


class TorchScriptFeatures:
    """A TorchScript video model from a local file (e.g. an I3D export) taking (B, 3, T, H, W) in [-1, 1]."""

    def __init__(self, path: Path, size: int = 224) -> None:
        self.model = torch.jit.load(str(path), map_location="cpu").eval()
        self.size = size

    @torch.no_grad()
    def __call__(self, clips: np.ndarray) -> np.ndarray:
        out = []
        for i in range(0, len(clips), 8):
            x = to_tensor(clips[i : i + 8])
            b, t = x.shape[0], x.shape[2]
            x = torch.nn.functional.interpolate(x, size=(t, self.size, self.size), mode="trilinear")
            out.append(self.model(x).reshape(b, -1).numpy())
        return np.concatenate(out)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (as in FID/FVD)."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # sqrt(A^½ B A^½) through symmetric eigendecompositions: stable without scipy.
    vals, vecs = np.linalg.eigh(cov_a)
    root_a = (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T
    inner = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_sqrt = np.sqrt(np.clip(inner, 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_sqrt)


@dataclass
class EvalReport:
    """What ``reelfoundry eval builtin`` prints."""

    adherence: dict[str, float]
    adherence_training_combos: dict[str, float]
    probe_accuracy: float
    fvd: float
    seconds_per_clip: float
    first_clip_seconds: float | None
    prompts: int
    steps: int
    guidance_scale: float

    def to_json(self) -> dict[str, Any]:
        """As a JSON-ready dict."""
        return asdict(self)


def _adherence(pred: dict[str, list[str]], prompts: list[SuitePrompt]) -> dict[str, float]:
    return {
        name: float(np.mean([p == getattr(q, name) for p, q in zip(pred[name], prompts, strict=True)]))
        for name in HEADS
    }


def evaluate(
    generate: Callable[[list[str], int], np.ndarray],
    probe: AttributeProbe,
    probe_accuracy: float,
    *,
    prompts: list[SuitePrompt] | None = None,
    features: FeatureExtractor | None = None,
    batch: int = 8,
    steps: int = 20,
    guidance_scale: float = 4.0,
    first_clip_seconds: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> EvalReport:
    """Run the protocol. ``generate(prompts, seed)`` returns uint8 clips (B, T, H, W, 3)."""
    prompts = prompts if prompts is not None else suite()
    clips = []
    start = time.perf_counter()
    for i in range(0, len(prompts), batch):
        chunk = prompts[i : i + batch]
        clips.append(generate([p.text for p in chunk], i))
        if progress is not None:
            progress(min(i + batch, len(prompts)), len(prompts))
    seconds = (time.perf_counter() - start) / len(prompts)
    generated = np.concatenate(clips)
    pred = predict(probe, generated)
    held = [i for i, p in enumerate(prompts) if p.held_out]
    seen = [i for i, p in enumerate(prompts) if not p.held_out]

    def pick(idx: list[int]) -> tuple[dict[str, list[str]], list[SuitePrompt]]:
        return {k: [v[i] for i in idx] for k, v in pred.items()}, [prompts[i] for i in idx]

    extractor = features or ProbeFeatures(probe)
    real = np.stack([s.clip for s in heldout_samples(77, max(len(held), 64))])
    return EvalReport(
        adherence=_adherence(*pick(held)),
        adherence_training_combos=_adherence(*pick(seen)) if seen else {},
        probe_accuracy=probe_accuracy,
        fvd=frechet_distance(extractor(generated[held]), extractor(real)),
        seconds_per_clip=seconds,
        first_clip_seconds=first_clip_seconds,
        prompts=len(prompts),
        steps=steps,
        guidance_scale=guidance_scale,
    )
