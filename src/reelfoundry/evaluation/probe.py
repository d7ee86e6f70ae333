"""The attribute probe: a small 3D CNN that reads colour, shape and motion off a 16×64×64 clip.

It is a measuring instrument, not the model under test: it is trained on procedural
clips of every (colour, shape, motion) combination (its own data seed, never the
model's) and its accuracy is reported on fresh clips of the combinations the model
never saw. Its penultimate layer is also the feature space of the Fréchet distance
(the role I3D plays in FVD).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from reelfoundry.training.data import ALL_COMBOS, COLOURS, MOTIONS, SHAPES, heldout_samples, sample

HEADS = {"colour": tuple(COLOURS), "shape": SHAPES, "motion": MOTIONS}
FEATURE_DIM = 128


def to_tensor(clips: np.ndarray) -> torch.Tensor:
    """uint8 (B, T, H, W, 3) → float (B, 3, T, H, W) in [-1, 1]."""
    return torch.from_numpy(clips).float().div(127.5).sub(1).permute(0, 4, 1, 2, 3).contiguous()


class AttributeProbe(nn.Module):
    """Clip → (features, logits per attribute)."""

    def __init__(self) -> None:
        super().__init__()

        def block(cin: int, cout: int, stride: tuple[int, int, int]) -> nn.Sequential:
            return nn.Sequential(nn.Conv3d(cin, cout, 3, stride, 1), nn.GroupNorm(8, cout), nn.SiLU())

        # The first layer keeps full resolution: a circle and a square of 16 px differ only at their corners
        # (a probe that strided at once confused them on 1 clip in 9).
        self.body = nn.Sequential(
            block(3, 16, (1, 1, 1)),  # 16×64×64
            block(16, 32, (1, 2, 2)),  # 16×32×32
            block(32, 64, (2, 2, 2)),  # 8×16×16
            block(64, 96, (2, 2, 2)),  # 4×8×8
            block(96, FEATURE_DIM // 2, (2, 2, 2)),  # 2×4×4
        )
        self.heads = nn.ModuleDict({name: nn.Linear(FEATURE_DIM, len(values)) for name, values in HEADS.items()})

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Mean- and max-pooled features (B, 128): the max keeps the strongest local (corner, tip) response."""
        h = self.body(x)
        return torch.cat([h.mean(dim=(2, 3, 4)), h.amax(dim=(2, 3, 4))], dim=1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits per attribute."""
        f = self.features(x)
        return {name: head(f) for name, head in self.heads.items()}


def _labels(specs: list[tuple[str, str, str]]) -> dict[str, torch.Tensor]:
    return {
        name: torch.tensor([values.index(spec[i]) for spec in specs]) for i, (name, values) in enumerate(HEADS.items())
    }


@dataclass
class ProbeReport:
    """Accuracy per attribute on held-out combinations, and all three right at once."""

    colour: float
    shape: float
    motion: float
    all: float


@torch.no_grad()
def predict(probe: AttributeProbe, clips: np.ndarray, batch: int = 32) -> dict[str, list[str]]:
    """The probe's reading of each clip."""
    probe.eval()
    out: dict[str, list[str]] = {name: [] for name in HEADS}
    for i in range(0, len(clips), batch):
        logits = probe(to_tensor(clips[i : i + batch]))
        for name, values in HEADS.items():
            out[name] += [values[j] for j in logits[name].argmax(-1).tolist()]
    return out


def accuracy(probe: AttributeProbe, seed: int = 99, count: int = 480) -> ProbeReport:
    """Accuracy on clips of held-out combinations (never seen by the probe)."""
    samples = heldout_samples(seed, count)
    pred = predict(probe, np.stack([s.clip for s in samples]))
    right = {
        name: np.array([p == getattr(s.spec, name) for p, s in zip(pred[name], samples, strict=True)]) for name in HEADS
    }
    return ProbeReport(
        colour=float(right["colour"].mean()),
        shape=float(right["shape"].mean()),
        motion=float(right["motion"].mean()),
        all=float((right["colour"] & right["shape"] & right["motion"]).mean()),
    )


def train_probe(
    steps: int = 1500, batch: int = 32, seed: int = 0, progress: Callable[[int, float], None] | None = None
) -> AttributeProbe:
    """Train a probe on clips of all combinations (data seed 4321, distinct from the model's and the tests')."""
    torch.manual_seed(seed)
    probe = AttributeProbe()
    opt = torch.optim.AdamW(probe.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    probe.train()
    for step in range(steps):
        samples = [sample(4321, step * batch + j, combos=ALL_COMBOS) for j in range(batch)]
        x = to_tensor(np.stack([s.clip for s in samples]))
        # Brightness jitter and noise: generated clips are never exactly the procedural palette.
        x = (x * (1 + 0.1 * torch.randn(len(x), 1, 1, 1, 1)) + 0.05 * torch.randn_like(x)).clamp(-1, 1)
        labels = _labels([(s.spec.colour, s.spec.shape, s.spec.motion) for s in samples])
        logits = probe(x)
        loss = sum(nn.functional.cross_entropy(logits[n], labels[n]) for n in HEADS)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if progress is not None:
            progress(step + 1, loss.item())
    return probe.eval()


def save_probe(probe: AttributeProbe, path: Path) -> None:
    """Save the probe's weights (safetensors)."""
    from safetensors.torch import save_file

    save_file(probe.state_dict(), str(path))


def load_probe(path: Path) -> AttributeProbe:
    """Load a probe saved with :func:`save_probe`."""
    from safetensors.torch import load_file

    probe = AttributeProbe()
    probe.load_state_dict(load_file(str(path)))
    return probe.eval()
