"""Look inside a built-in model checkpoint: what it predicts from pure noise and how it denoises.

    python -m reelfoundry.training.diagnostics runs/builtin/checkpoint.pt [--raw] [--out diag.png]

Two panels in one PNG, each row every third frame of a clip:

* **From pure noise (σ = 1)**: the clean clip the model predicts for contrasting prompts
  (same colours, different motion and shape). Sampling starts here, so this prediction is
  the layout every sample inherits: if it is the same static blob for "moving left" and
  "moving up", no number of sampling steps will make the object move.
* **Denoising real clips**: a held-out clip, then the model's clean prediction from it noised
  to σ = 0.3 … 1.0. Sharp shapes up to σ ≈ 0.85 show the denoiser itself works.

``--raw`` shows the trained weights rather than their EMA (which lags ~1/(1 − decay) steps).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from reelfoundry.models.pipeline_builtin import BuiltinVideoPipeline
from reelfoundry.training.data import heldout_samples

CONTRAST_PROMPTS = (
    "a red circle moving left on a blue background",
    "a red circle moving up on a blue background",
    "a red square growing on a blue background",
    "a red star shrinking on a blue background",
)
SIGMAS = (0.3, 0.5, 0.7, 0.85, 0.95, 1.0)


def _frames(clip: torch.Tensor) -> np.ndarray:
    """(C, T, H, W) in [-1, 1] → every third frame side by side, uint8."""
    frames = ((clip.float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 3, 0).numpy()
    return np.concatenate(list(frames[::3]), axis=1)


@torch.no_grad()
def clean_prediction(pipe: BuiltinVideoPipeline, noisy: torch.Tensor, sigma: float, prompts: list[str]) -> torch.Tensor:
    """The model's clean clip x̂ = x_σ − σ·v for ``noisy`` clips at noise level ``sigma`` (no guidance)."""
    text = pipe.encode_prompt(prompts)
    timestep = torch.full((noisy.shape[0],), sigma * 1000.0)
    velocity = pipe.transformer(noisy, timestep, text.states, text.mask, text.pooled)
    return noisy - sigma * velocity


def diagnose(pipe: BuiltinVideoPipeline, seed: int = 0) -> np.ndarray:
    """The two panels as one uint8 image."""
    cfg = pipe.transformer.config
    shape = (len(CONTRAST_PROMPTS), cfg.in_channels, cfg.num_frames, cfg.sample_size, cfg.sample_size)
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(shape, generator=generator)
    from_noise = clean_prediction(pipe, noise, 1.0, list(CONTRAST_PROMPTS))
    top = np.concatenate([_frames(clip) for clip in from_noise], axis=0)

    samples = heldout_samples(77, 3)
    clean = torch.from_numpy(np.stack([s.clip for s in samples])).float().div(127.5).sub(1).permute(0, 4, 1, 2, 3)
    eps = torch.randn(clean.shape, generator=generator)
    middle = cfg.num_frames // 2
    rows = []
    for i, s in enumerate(samples):
        cells = [clean[i, :, middle]]
        for sigma in SIGMAS:
            noisy = (1 - sigma) * clean[i : i + 1] + sigma * eps[i : i + 1]
            cells.append(clean_prediction(pipe, noisy, sigma, [s.caption])[0, :, middle])
        rows.append(np.concatenate([_frames(c[:, None]) for c in cells], axis=1))
    bottom = np.concatenate(rows, axis=0)
    width = max(top.shape[1], bottom.shape[1])

    def pad(img: np.ndarray) -> np.ndarray:
        return np.pad(img, ((0, 0), (0, width - img.shape[1]), (0, 0)), constant_values=255)

    gap = np.full((8, width, 3), 255, dtype=np.uint8)
    return np.concatenate([pad(top), gap, pad(bottom)], axis=0)


def main(argv: list[str] | None = None) -> None:
    from PIL import Image

    from reelfoundry.training.builtin import ema_pipeline

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--raw", action="store_true", help="the trained weights, not their EMA")
    parser.add_argument("--out", type=Path, default=Path("diagnostics.png"))
    args = parser.parse_args(argv)
    pipe = ema_pipeline(args.checkpoint, weights="model" if args.raw else "ema")
    image = diagnose(pipe)
    Image.fromarray(image).resize((image.shape[1] * 2, image.shape[0] * 2), Image.Resampling.NEAREST).save(args.out)
    print(args.out)


if __name__ == "__main__":
    main()
