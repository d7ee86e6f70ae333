"""Render the README's showcase of the built-in model: a poster strip (PNG) and an animated GIF.

    python docs/make_showcase.py [--weights DIR] [--out docs]

Each row is one prompt (three of them use colour/shape/motion combinations held out
of training); the strip shows every other frame, the GIF plays all 16 at 8 fps.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from reelfoundry.models.builtin import WEIGHTS_DIR, builtin_card
from reelfoundry.portfolio.backends.diffusers import DiffusersBackend
from reelfoundry.training.data import HELD_OUT

PROMPTS = [
    "a red circle moving left on a blue background",
    "a white star growing on a purple background",
    "a green triangle moving right over a black backdrop",
    "a yellow square shrinking on a blue background",
]
SCALE = 2
LABEL_H = 18


def _label(width: int, text: str) -> Image.Image:
    img = Image.new("RGB", (width, LABEL_H), (255, 255, 255))
    ImageDraw.Draw(img).text((4, 3), text, fill=(20, 20, 20))
    return img


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, default=WEIGHTS_DIR)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    card = builtin_card(args.weights)
    if card is None:
        raise SystemExit(f"no trained built-in model at {args.weights}")
    backend = DiffusersBackend(card)
    out = backend.pipeline()(
        PROMPTS,
        num_inference_steps=card.default_steps,
        guidance_scale=card.default_guidance_scale,
        generator=torch.Generator().manual_seed(args.seed),
        **backend.call_kwargs,
    )
    clips = (np.asarray(out.frames) * 255).round().astype(np.uint8)  # (B, T, H, W, 3)
    b, t, h, w, _ = clips.shape
    held = {f"{c} {s} {m}" for c, s, m in HELD_OUT}
    texts = [p + ("   (held out of training)" if any(k in p for k in held) else "") for p in PROMPTS]

    # Poster strip: every other frame of each clip, a caption above each row.
    cols = list(range(0, t, 2))
    cell = w * SCALE
    strip = Image.new("RGB", (cell * len(cols), b * (h * SCALE + LABEL_H)), (255, 255, 255))
    for i in range(b):
        y = i * (h * SCALE + LABEL_H)
        strip.paste(_label(strip.width, texts[i]), (0, y))
        for j, f in enumerate(cols):
            frame = Image.fromarray(clips[i, f]).resize((cell, h * SCALE), Image.NEAREST)
            strip.paste(frame, (j * cell, y + LABEL_H))
    args.out.mkdir(parents=True, exist_ok=True)
    strip.save(args.out / "builtin_strip.png", optimize=True)

    # GIF: the clips side by side, all frames.
    frames = []
    for f in range(t):
        canvas = Image.new("RGB", (b * cell, h * SCALE), (255, 255, 255))
        for i in range(b):
            canvas.paste(Image.fromarray(clips[i, f]).resize((cell, h * SCALE), Image.NEAREST), (i * cell, 0))
        frames.append(canvas)
    frames[0].save(
        args.out / "builtin.gif", save_all=True, append_images=frames[1:], duration=125, loop=0, optimize=True
    )
    print(f"wrote {args.out / 'builtin_strip.png'} and {args.out / 'builtin.gif'}")


if __name__ == "__main__":
    main()
