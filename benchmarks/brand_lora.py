"""Brand colour by LoRA: does a fine-tuned built-in model draw "acme coral" (#FF6F61) where the base does not?

Bar (issue 17): for "an acme coral star moving up on a black background", the mean object colour is within
ΔE 15 of #FF6F61 in ≥ 80 % of 20 seeds with the adapter, where the base model does so in ≤ 20 %; fine-tuning
takes ≤ 15 minutes on the 2-core machine. Baseline in the same run: the base model, same prompt, same seeds.

The judged ΔE is CIEDE2000 on the object's core: the pixels that differ from the background (the median of
the clip's border) by at least half as much as the object's strongest pixels. Calibrated on the base model:
asked for its own red, orange or purple star it scores CIEDE2000 6–11 on the core, but 11–24 when every pixel
that differs by more than 40/255 counts (its anti-aliased halo and dark speckles pull the mean towards the
background; a drawn, perfectly sharp coral star scores 3.3 core, 6.7 that way). A measure that fails the
base model on colours it was trained on does not measure colour adherence, so the core is the bar; the
script prints the other mask, CIE76 on both and a "base, red" calibration row beside it.

    python benchmarks/brand_lora.py [--adapter DIR | --out DIR] [--clips 96] [--steps 120] [--rank 8] [--lr 2e-3]

Without ``--adapter`` it makes the brand clips, fine-tunes (timed) into ``--out`` and then measures.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from reelfoundry.models.builtin import builtin_card
from reelfoundry.portfolio.backends.diffusers import DiffusersBackend
from reelfoundry.portfolio.base import GenerationParams
from reelfoundry.schema import ModelCard
from reelfoundry.training.data import COLOURS, BrandColour, brand_samples
from reelfoundry.training.lora import LoraSettings, lora_card, train_lora

BRAND = BrandColour.from_hex("acme coral", "#FF6F61")
PROMPT = "an acme coral star moving up on a black background"
BAR_DELTA_E = 15.0
#: a pixel belongs to the object when one channel differs from the background by more than this (of 255)
OBJECT_THRESHOLD = 40


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (…, 3) in 0–255 → CIELAB (D65)."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    c = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array(
        [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
    )
    xyz = c @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def delta_e76(a: Sequence[float], b: Sequence[float]) -> float:
    """CIE76: Euclidean distance in CIELAB."""
    return float(np.linalg.norm(srgb_to_lab(np.asarray(a)) - srgb_to_lab(np.asarray(b))))


def delta_e2000(a: Sequence[float], b: Sequence[float]) -> float:
    """CIEDE2000 between two sRGB colours."""
    return delta_e2000_lab(srgb_to_lab(np.asarray(a)), srgb_to_lab(np.asarray(b)))


def delta_e2000_lab(lab1: Sequence[float], lab2: Sequence[float]) -> float:
    """CIEDE2000 (Sharma, Wu & Dalal 2005), kL = kC = kH = 1; their test pair 1 gives 2.0425."""
    l1, a1, b1 = (float(v) for v in lab1)
    l2, a2, b2 = (float(v) for v in lab2)
    c_bar = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    g = 0.5 * (1 - np.sqrt(c_bar**7 / (c_bar**7 + 25**7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p, h2p = np.degrees(np.arctan2(b1, a1p)) % 360, np.degrees(np.arctan2(b2, a2p)) % 360
    dl, dc = l2 - l1, c2p - c1p
    dh = 0.0 if c1p * c2p == 0 else (h2p - h1p + 180) % 360 - 180
    dhh = 2 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh / 2))
    l_bar, cp_bar = (l1 + l2) / 2, (c1p + c2p) / 2
    if c1p * c2p == 0:
        h_bar = h1p + h2p
    elif abs(h1p - h2p) <= 180:
        h_bar = (h1p + h2p) / 2
    else:
        h_bar = (h1p + h2p + 360) / 2 if h1p + h2p < 360 else (h1p + h2p - 360) / 2
    t = (
        1
        - 0.17 * np.cos(np.radians(h_bar - 30))
        + 0.24 * np.cos(np.radians(2 * h_bar))
        + 0.32 * np.cos(np.radians(3 * h_bar + 6))
        - 0.20 * np.cos(np.radians(4 * h_bar - 63))
    )
    sl = 1 + 0.015 * (l_bar - 50) ** 2 / np.sqrt(20 + (l_bar - 50) ** 2)
    sc, sh = 1 + 0.045 * cp_bar, 1 + 0.015 * cp_bar * t
    rt = -2 * np.sqrt(cp_bar**7 / (cp_bar**7 + 25**7)) * np.sin(np.radians(60 * np.exp(-(((h_bar - 275) / 25) ** 2))))
    return float(np.sqrt((dl / sl) ** 2 + (dc / sc) ** 2 + (dhh / sh) ** 2 + rt * (dc / sc) * (dhh / sh)))


def object_colour(clip: np.ndarray, mask: str = "core") -> np.ndarray | None:
    """Mean colour of the object in a clip (T, H, W, 3) uint8: the pixels that differ from its background (the
    median of its border pixels). ``mask="core"``: those that differ by at least half as much as the object's
    strongest pixels (its 99.5th percentile); ``"any"``: every pixel that differs by more than 40 of 255, the
    anti-aliased halo and the model's dark speckles included. None when no pixel differs by more than 40."""
    border = np.concatenate([clip[:, 0], clip[:, -1], clip[:, 1:-1, 0], clip[:, 1:-1, -1]], axis=1).reshape(-1, 3)
    difference = np.abs(clip.astype(np.int16) - np.median(border, axis=0)).max(-1)
    strongest = float(np.percentile(difference, 99.5))
    if strongest <= OBJECT_THRESHOLD:
        return None
    cut = 0.5 * strongest if mask == "core" else OBJECT_THRESHOLD
    return np.asarray(clip[difference >= cut].mean(axis=0))


def measure(
    card: ModelCard, seeds: Sequence[int], prompt: str = PROMPT, target: Sequence[int] = BRAND.rgb
) -> list[dict[str, float]]:
    """Per seed, ΔE2000 and CIE76 from ``target`` of the object's mean colour under both masks (inf: no object)."""
    backend = DiffusersBackend(card)
    results = []
    for seed in seeds:
        params = GenerationParams(
            prompt=prompt,
            num_frames=16,
            fps=8,
            width=64,
            height=64,
            seed=seed,
            steps=card.default_steps,
            guidance_scale=card.default_guidance_scale,
        )
        clip = np.asarray(backend.generate(params).frames)
        row = {}
        for mask in ("core", "any"):
            colour = object_colour(clip, mask)
            row[f"de2000_{mask}"] = float("inf") if colour is None else delta_e2000(colour, target)
            row[f"de76_{mask}"] = float("inf") if colour is None else delta_e76(colour, target)
        results.append(row)
    return results


def share_within(results: Sequence[dict[str, float]], key: str = "de2000_core") -> float:
    """Share of seeds whose object colour is within the bar by ``key``."""
    return sum(r[key] <= BAR_DELTA_E for r in results) / len(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adapter", type=Path, help="an adapter directory to measure (skips training)")
    parser.add_argument("--out", type=Path, help="where to write the adapter (default: a temporary directory)")
    parser.add_argument("--clips", type=int, default=96)
    parser.add_argument("--steps", type=int, default=LoraSettings.steps)
    parser.add_argument("--rank", type=int, default=LoraSettings.rank)
    parser.add_argument("--lr", type=float, default=LoraSettings.lr)
    parser.add_argument("--batch-size", type=int, default=LoraSettings.batch_size)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--skip-base", action="store_true", help="measure only the adapter")
    args = parser.parse_args()
    base = builtin_card()
    if base is None:
        raise SystemExit("no trained built-in model installed")
    base_sha = base.options["sha256"]["transformer/diffusion_pytorch_model.safetensors"]
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    if args.adapter is None:
        out = args.out or Path(tempfile.mkdtemp()) / "acme-coral"
        settings = LoraSettings(rank=args.rank, steps=args.steps, lr=args.lr, batch_size=args.batch_size)
        clips = [(s.clip, s.caption) for s in brand_samples(BRAND, seed=17, count=args.clips)]
        pipe = DiffusersBackend(base).pipeline()
        started = time.perf_counter()

        def progress(step: int, total: int, loss: float) -> bool:
            if step % 25 == 0 or step == total:
                print(f"  step {step}/{total} loss {loss:.4f} {time.perf_counter() - started:.0f} s", flush=True)
            return True

        trained = train_lora(pipe, clips, out, settings, progress, base_sha256=base_sha)
        assert trained is not None
        print(f"fine-tune: {time.perf_counter() - started:.0f} s, load average now {os.getloadavg()[0]:.2f}")
        args.adapter = out
    record = json.loads((args.adapter / "adapter.json").read_text())
    tuned = lora_card(base, "acme-coral", args.adapter / "adapter.safetensors", record["sha256"], scale=args.scale)
    seeds = range(args.seeds)
    rows = {"adapter": measure(tuned, seeds)}
    if not args.skip_base:
        rows["base"] = measure(base, seeds)
        # Calibration: the base model asked for a colour it was trained on, judged by the same measure.
        rows["base, red"] = measure(base, seeds[:5], PROMPT.replace("an acme coral", "a red"), COLOURS["red"])
    for name, results in rows.items():
        shares = "  ".join(f"{key} {share_within(results, key):4.0%}" for key in results[0])
        print(f"{name:10s} within ΔE {BAR_DELTA_E:g}: {shares}")
        print(" " * 10, "ΔE2000 (core):", " ".join(f"{r['de2000_core']:.1f}" for r in results))
    if "base" in rows:
        adapter, base_share = share_within(rows["adapter"]), share_within(rows["base"])
        ok = adapter >= 0.8 and base_share <= 0.2
        print(f"ratio adapter/base (ΔE2000, core): {adapter:.2f}/{base_share:.2f}; bar {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
