"""Training the built-in model from scratch on the procedural data set (CPU-sized, resumable).

Rectified flow: x_σ = (1 − σ)·x₀ + σ·ε, the model predicts ε − x₀, σ is drawn
logit-normal (as in SD3). Captions are dropped to the empty prompt 10% of the time so
classifier-free guidance works. An exponential moving average of the weights is what
gets exported. Checkpoints hold model, EMA, optimiser, step and loss history; the data
stream is a pure function of (seed, index), so a resumed run sees exactly the samples
an uninterrupted one would.
"""

from __future__ import annotations

import copy
import json
import math
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reelfoundry.models.pipeline_builtin import SIGMA_SHIFT, BuiltinVideoPipeline, new_pipeline
from reelfoundry.models.text_encoder import TextEmbeddings, shared_encoder
from reelfoundry.training.data import COLOURS, sample

#: Architecture of the shipped model.
MODEL_CONFIG: dict[str, Any] = {
    "hidden_dim": 192,
    "depth": 6,
    "heads": 6,
    "patch_t": 4,
    "patch_size": 8,
    "prediction_type": "sample",
    "refiner_channels": 16,
    "refiner_features": 8,
}
#: Below this noise level the velocity loss (= clean-clip error / σ²) stops growing.
MIN_LOSS_SIGMA = 0.2


@dataclass
class TrainConfig:
    """What a training run does; stored in every checkpoint."""

    steps: int = 6_000
    batch_size: int = 24
    lr: float = 4e-4
    warmup: int = 150
    ema_decay: float = 0.999
    caption_dropout: float = 0.1
    #: noise-level shift, shared with the exported pipeline's scheduler (see pipeline_builtin.SIGMA_SHIFT)
    sigma_shift: float = SIGMA_SHIFT
    #: fraction of each batch at a uniform noise level, and at pure noise (σ = 1): the shifted
    #: logit-normal alone almost never visits σ > 0.98 or σ < 0.5, where sampling starts and where
    #: shapes form (the last sampling step returns the clean-clip prediction at σ ≈ 0.3). At 0.2 only
    #: ~4% of training was below σ = 0.5 and a real star noised to σ = 0.5 came back a round blob.
    uniform_sigma: float = 0.5
    pure_noise: float = 0.05
    #: extra loss weight on the object's pixels (about 8% of a clip): once the background colour is
    #: right, where the object is and what shape it has is most of what is left to learn
    object_weight: float = 4.0
    seed: int = 0
    data_seed: int = 1234
    checkpoint_every_s: float = 600.0
    model: dict[str, Any] = field(default_factory=lambda: dict(MODEL_CONFIG))


@dataclass
class Progress:
    """What the progress callback is told after each step."""

    step: int
    steps: int
    loss: float
    samples_per_s: float


def _batch(cfg: TrainConfig, step: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Clips (B, C, T, H, W) in [-1, 1], per-pixel loss weights (B, 1, T, H, W) and captions."""
    samples = [sample(cfg.data_seed, step * cfg.batch_size + j) for j in range(cfg.batch_size)]
    clips = torch.from_numpy(np.stack([s.clip for s in samples])).float().div_(127.5).sub_(1)
    backgrounds = torch.tensor([COLOURS[s.spec.background] for s in samples]).float().div_(127.5).sub_(1)
    weights = object_weights(clips, backgrounds, cfg.object_weight)
    captions = ["" if rng.random() < cfg.caption_dropout else s.caption for s in samples]
    return clips.permute(0, 4, 1, 2, 3).contiguous(), weights, captions


def object_weights(clips: torch.Tensor, backgrounds: torch.Tensor, object_weight: float) -> torch.Tensor:
    """Per-pixel loss weights (B, 1, T, H, W): 1 + ``object_weight`` where a clip (B, T, H, W, 3) in [-1, 1]
    differs from its background colour (B, 3)."""
    foreground = (clips - backgrounds.view(-1, 1, 1, 1, 3)).abs().amax(-1) > 0.1  # (B, T, H, W)
    return (1 + object_weight * foreground.float()).unsqueeze(1)


def _sigmas(cfg: TrainConfig, shift: float, n: int) -> torch.Tensor:
    return noise_levels(n, shift, cfg.uniform_sigma, cfg.pure_noise)


def noise_levels(n: int, shift: float, uniform_sigma: float, pure_noise: float) -> torch.Tensor:
    """Noise levels for a batch: shifted logit-normal, mixed with uniform levels and pure noise."""
    u = torch.sigmoid(torch.randn(n))  # logit-normal, then shifted towards noise
    sigma = shift * u / (1 + (shift - 1) * u)
    pick = torch.rand(n)
    sigma = torch.where(pick < uniform_sigma, torch.rand(n), sigma)
    return torch.where(pick > 1 - pure_noise, torch.ones(n), sigma)


def _lr(cfg: TrainConfig, step: int, warm_from: int = 0) -> float:
    return learning_rate(cfg.lr, step, cfg.steps, cfg.warmup, warm_from)


def learning_rate(peak: float, step: int, steps: int, warmup: int, warm_from: int = 0) -> float:
    """Linear warm-up (from the start, or again after resuming without optimiser state), then cosine to 10%."""
    progress = (step - warmup) / max(1, steps - warmup)
    lr = peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, max(0.0, progress)))))
    return lr * min(1.0, (step - warm_from + 1) / max(1, warmup))


def flow_loss(
    model: torch.nn.Module,
    clips: torch.Tensor,
    weights: torch.Tensor,
    text: TextEmbeddings,
    sigma: torch.Tensor,
    noise: torch.Tensor,
    use_bf16: bool = False,
) -> torch.Tensor:
    """The rectified-flow training loss of ``model`` on clean ``clips`` (B, C, T, H, W) noised to ``sigma``.

    Velocity loss; for σ < MIN_LOSS_SIGMA it is capped at the clean-clip error / MIN_LOSS_SIGMA²
    so nearly clean samples (weight 1/σ² under x-prediction) cannot dominate.
    """
    s = sigma.view(-1, 1, 1, 1, 1)
    noisy = (1 - s) * clips + s * noise
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
        pred = model(noisy, sigma * 1000, text.states, text.mask, text.pooled)
    weight = (sigma / sigma.clamp(min=MIN_LOSS_SIGMA)).pow(2)
    per_clip = ((pred.float() - (noise - clips)).pow(2) * weights).mean(dim=(1, 2, 3, 4))
    return (per_clip * weight).mean()


def _save(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def train(
    out: Path,
    cfg: TrainConfig,
    progress: Callable[[Progress], None] | None = None,
) -> BuiltinVideoPipeline:
    """Train, resuming from ``out/checkpoint.pt`` if present; returns the EMA pipeline.

    SIGINT or SIGTERM saves a checkpoint at the next step boundary and returns early
    (rerun to continue). ``wall_s`` counts time spent in steps, so pauses do not inflate it.
    """
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "checkpoint.pt"
    torch.manual_seed(cfg.seed)
    state = torch.load(ckpt_path, weights_only=False) if ckpt_path.exists() else None
    # A resumed run keeps the architecture it was started with, plus parts added since (options
    # its checkpoint does not name, such as the refiner); those start from their initialisation.
    model_config = {**cfg.model, **state["config"]["model"]} if state else dict(cfg.model)
    shift = float(state["config"].get("sigma_shift", 1.0)) if state else cfg.sigma_shift
    pipe = new_pipeline(sigma_shift=shift, **model_config)
    model = pipe.transformer.train()
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01, betas=(0.9, 0.99))
    step, losses, wall, warm_from = 0, [], 0.0, 0
    if state is not None:
        grown = _load_grown(model, state["model"]) | _load_grown(ema, state["ema"])
        step, losses, wall = state["step"], state["losses"], state["wall_s"]
        if "opt" in state and not grown:
            opt.load_state_dict(state["opt"])
        else:  # a compact checkpoint or a grown model: fresh optimiser moments, so warm up again
            warm_from = step
        torch.set_rng_state(state["torch_rng"])
    encoder = shared_encoder("cpu")
    rng = np.random.default_rng([cfg.seed, step])
    last_ckpt = time.monotonic()
    use_bf16 = use_bf16_autocast()
    window: list[float] = []
    stop = _StopFlag()

    def save() -> None:
        _save(
            ckpt_path,
            {
                "model": model.state_dict(),
                "ema": ema.state_dict(),
                "opt": opt.state_dict(),
                "step": step,
                "losses": losses,
                "wall_s": wall,
                "torch_rng": torch.get_rng_state(),
                "config": {**asdict(cfg), "model": model_config, "sigma_shift": shift},
            },
        )

    with stop:
        while step < cfg.steps and not stop.raised:
            t0 = time.perf_counter()
            clips, weights, captions = _batch(cfg, step, rng)
            text = encoder(captions)
            sigma = _sigmas(cfg, shift, clips.shape[0])
            noise = torch.randn_like(clips)
            for group in opt.param_groups:
                group["lr"] = _lr(cfg, step, warm_from)
            loss = flow_loss(model, clips, weights, text, sigma, noise, use_bf16)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            with torch.no_grad():
                decay = min(cfg.ema_decay, (1 + step) / (10 + step))
                for pe, pm in zip(ema.parameters(), model.parameters(), strict=True):
                    pe.lerp_(pm, 1 - decay)
            step += 1
            losses.append(loss.item())
            took = time.perf_counter() - t0
            wall += took
            window = [*window[-19:], took]
            report = Progress(step, cfg.steps, float(np.mean(losses[-50:])), cfg.batch_size / float(np.mean(window)))
            if progress is not None:
                progress(report)
            if step % 25 == 0 or step == cfg.steps:
                with (out / "train_log.jsonl").open("a") as log:
                    log.write(json.dumps({**asdict(report), "wall_s": round(wall, 1)}) + "\n")
            if time.monotonic() - last_ckpt > cfg.checkpoint_every_s or step == cfg.steps:
                save()
                last_ckpt = time.monotonic()
        if stop.raised:
            save()
    pipe.transformer = ema
    return pipe


def _load_grown(module: torch.nn.Module, weights: dict[str, torch.Tensor]) -> bool:
    """Load ``weights``; parameters the checkpoint lacks keep their initialisation. True if there were any."""
    result = module.load_state_dict({k: v.float() for k, v in weights.items()}, strict=False)
    if result.unexpected_keys:
        raise ValueError(f"checkpoint has weights this model does not: {result.unexpected_keys[:5]}")
    return bool(result.missing_keys)


class _StopFlag:
    """Turns SIGINT/SIGTERM into a flag for the duration of a ``with`` block."""

    def __init__(self) -> None:
        self.raised = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopFlag:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.raised = True

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def compact_checkpoint(src: Path, dst: Path) -> None:
    """A small resumable checkpoint (weights and EMA in bfloat16, no optimiser state) for committing to git."""
    state = torch.load(src, weights_only=False)
    state.pop("opt", None)
    for key in ("model", "ema"):
        state[key] = {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in state[key].items()}
    _save(dst, state)


def ema_pipeline(checkpoint: Path, weights: str = "ema") -> BuiltinVideoPipeline:
    """The EMA weights of a checkpoint as a pipeline (``weights="model"``: the trained weights themselves)."""
    state = torch.load(checkpoint, weights_only=False)
    pipe = new_pipeline(sigma_shift=state["config"].get("sigma_shift", 1.0), **state["config"]["model"])
    pipe.transformer.load_state_dict({k: v.float() for k, v in state[weights].items()})
    pipe.transformer.eval()
    return pipe


def loss_curve(checkpoint: Path, out: Path) -> None:
    """Plot the training loss (raw and smoothed) to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    losses = np.array(torch.load(checkpoint, weights_only=False)["losses"])
    window = max(1, len(losses) // 100)
    smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=110)
    ax.plot(losses, color="#bbbbbb", linewidth=0.6, label="per step")
    ax.plot(np.arange(window - 1, len(losses)), smooth, color="#c0392b", linewidth=1.5, label=f"mean of {window}")
    ax.set_xlabel("step")
    ax.set_ylabel("flow-matching loss")
    ax.set_yscale("log")
    ax.set_title("Built-in model training loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def use_bf16_autocast() -> bool:
    """bf16 autocast pays off on CPUs with AMX/AVX512-BF16; elsewhere it is slower than fp32."""
    return torch.backends.mkldnn.is_available() and _has_amx()


def _has_amx() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def write_run_info(out: Path, cfg: TrainConfig, extra: dict[str, Any]) -> None:
    """Record the configuration of a run next to its outputs."""
    (out / "train_config.json").write_text(json.dumps({**asdict(cfg), **extra}, indent=2))
