"""What NRES measures on clips: feature extractors for the Fréchet distance, and weight-free temporal metrics.

Extractors take clips fitted to the probe's shape (16 frames of 64×64, uint8) and return one feature vector per
clip. The built-in attribute probe is the default; a local checkpoint replaces it:

- a file: a TorchScript video model (an I3D export) taking (B, 3, T, H, W) in [-1, 1];
- a directory with a ``config.json`` whose ``model_type`` is ``videomae``: a transformers VideoMAE checkpoint
  (safetensors only, loaded offline), features the mean of its last hidden states.

Weight-free metrics, per clip, then averaged:

- temporal consistency: the mean Pearson correlation of consecutive frames' luminance (1: each frame follows
  from the last; near 0: unrelated frames, as noise gives);
- flicker: the mean absolute second difference of the frames' mean luminance, over 255 (0: steady or
  smoothly changing brightness; a fade has none, an on-off blink has a lot).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reelfoundry.errors import InvalidParameter
from reelfoundry.evaluation.probe import load_probe
from reelfoundry.evaluation.protocol import FeatureExtractor, ProbeFeatures, TorchScriptFeatures

#: The shape every clip is fitted to before features are taken: the probe's (and the procedural set's).
FIT_FRAMES, FIT_SIDE = 16, 64
PROBE_WEIGHTS = Path(__file__).parent / "weights" / "probe.safetensors"
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def fit_clip(clip: np.ndarray) -> np.ndarray:
    """A uint8 clip (T, H, W, 3) resampled to (16, 64, 64, 3): frames picked evenly, each resized (area-like)."""
    if clip.ndim != 4 or clip.shape[-1] != 3 or clip.shape[0] < 1:
        raise ValueError(f"a clip is (frames, height, width, 3), got {clip.shape}")
    index = np.linspace(0, clip.shape[0] - 1, FIT_FRAMES).round().astype(int)
    frames = torch.from_numpy(np.ascontiguousarray(clip[index])).permute(0, 3, 1, 2).float()
    if frames.shape[-2:] != (FIT_SIDE, FIT_SIDE):
        frames = torch.nn.functional.interpolate(frames, size=(FIT_SIDE, FIT_SIDE), mode="bilinear", antialias=True)
    return frames.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def temporal_consistency(clip: np.ndarray) -> float:
    """Mean correlation of consecutive frames' luminance, in [-1, 1] (two flat equal frames count as 1)."""
    luma = clip.astype(np.float32) @ _LUMA
    if len(luma) < 2:
        return 1.0
    values = []
    for a, b in itertools.pairwise(luma):
        da, db = a - a.mean(), b - b.mean()
        norm = float(np.sqrt((da * da).sum() * (db * db).sum()))
        if norm < 1e-6:  # a flat frame: consistent only if the next is the same flat frame
            values.append(1.0 if np.abs(a - b).max() < 1.0 else 0.0)
        else:
            values.append(float((da * db).sum()) / norm)
    return float(np.mean(values))


def flicker(clip: np.ndarray) -> float:
    """Mean absolute second difference of per-frame mean luminance, over 255 (in [0, 2])."""
    means = (clip.astype(np.float32) @ _LUMA).mean(axis=(1, 2))
    if len(means) < 3:
        return 0.0
    return float(np.abs(np.diff(means, n=2)).mean() / 255.0)


class VideoMAEFeatures:
    """A transformers VideoMAE checkpoint from a local directory: mean of the last hidden states."""

    _MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 1, 3, 1, 1)
    _STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 1, 3, 1, 1)

    def __init__(self, directory: Path) -> None:
        from transformers import VideoMAEModel

        self.model = VideoMAEModel.from_pretrained(str(directory), local_files_only=True, use_safetensors=True).eval()
        config: Any = self.model.config
        self.frames, self.side = int(config.num_frames), int(config.image_size)

    @torch.no_grad()
    def __call__(self, clips: np.ndarray) -> np.ndarray:
        out = []
        for i in range(0, len(clips), 8):
            x = torch.from_numpy(clips[i : i + 8]).float().div(255).permute(0, 1, 4, 2, 3)  # B, T, C, H, W
            b, t = x.shape[:2]
            index = torch.linspace(0, t - 1, self.frames).round().long()
            x = x[:, index].flatten(0, 1)
            x = torch.nn.functional.interpolate(x, size=(self.side, self.side), mode="bilinear", antialias=True)
            x = (x.view(b, self.frames, 3, self.side, self.side) - self._MEAN) / self._STD
            out.append(self.model(pixel_values=x).last_hidden_state.mean(dim=1).numpy())
        return np.concatenate(out)


def load_extractor(path: Path | None) -> tuple[FeatureExtractor, str]:
    """The feature extractor and its name: the built-in probe, or the checkpoint at ``path`` (see the module)."""
    if path is None:
        return ProbeFeatures(load_probe(PROBE_WEIGHTS)), "probe (built-in attribute probe, 128-d)"
    path = path.expanduser()
    if path.is_file():
        try:
            return TorchScriptFeatures(path), f"torchscript:{path.name}"
        except (RuntimeError, ValueError) as exc:
            raise InvalidParameter("features", f"{path} is not a TorchScript video model: {exc}") from None
    config = path / "config.json"
    if path.is_dir() and config.is_file():
        try:
            model_type = json.loads(config.read_text()).get("model_type")
        except (OSError, ValueError) as exc:
            raise InvalidParameter("features", f"{config} is not readable JSON: {exc}") from None
        if model_type == "videomae":
            try:
                return VideoMAEFeatures(path), f"videomae:{path.name}"
            except (OSError, ValueError) as exc:
                raise InvalidParameter("features", f"cannot load the VideoMAE checkpoint {path}: {exc}") from None
        raise InvalidParameter("features", f"{path}: model_type {model_type!r} is not a video feature extractor")
    raise InvalidParameter(
        "features", f"{path} is neither a TorchScript file nor a VideoMAE checkpoint directory (config.json)"
    )


def extract(extractor: FeatureExtractor, clips: list[np.ndarray]) -> np.ndarray:
    """Features of clips already fitted with :func:`fit_clip`, as float64 (B, D)."""
    return np.asarray(extractor(np.stack(clips)), dtype=np.float64)
