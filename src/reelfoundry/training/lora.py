"""LoRA fine-tuning of the built-in model on captioned clips, and loading adapters into any pipeline.

:func:`train_lora` trains a PEFT LoRA adapter (diffusers' ``add_adapter``) on a copy of the
built-in transformer with the loss and noise levels of ``training/builtin.py``; the base is never
touched. It is a pure function of (base weights, clips, settings): one seed gives the same adapter
file byte for byte, and ``on_step`` can stop it, in which case it returns None and writes nothing.

The adapter is written in diffusers' pipeline LoRA format (what ``save_lora_weights`` writes:
safetensors, keys ``transformer.<module>.lora_A.weight``, the ``LoraConfig`` as JSON under the
``lora_adapter_metadata`` header key) rather than peft's ``save_pretrained`` layout. That one file
then loads into the built-in pipeline (``transformer.load_lora_adapter``) and, unchanged, into
LTX-Video or Wan through ``pipeline.load_lora_weights``, the same way third-party LoRAs for those
pipelines arrive; and it is one self-describing file whose sha256 pins it. ``adapter.json`` beside it
records the training settings, the clips used and the base model's sha256.

:func:`load_adapter` reads only safetensors (no pickle, whatever the suffix says) and only after the
file's sha256 matches the one pinned.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from reelfoundry.errors import ConfigurationError, InvalidParameter, ModelIntegrityError
from reelfoundry.schema import ModelCard

#: The adapter's file name inside its directory, and its record.
ADAPTER_FILE = "adapter.safetensors"
ADAPTER_JSON = "adapter.json"
#: The diffusers safetensors header key holding the LoraConfig, and ours holding the base model's pin.
LORA_METADATA_KEY = "lora_adapter_metadata"
BASE_METADATA_KEY = "reelfoundry_base_sha256"
#: Modules of the built-in VideoDiT that get a LoRA by default: every attention projection (spatial,
#: temporal, cross, and the prompt pooling), the MLPs and the prompt projections. The per-block adaLN
#: modulation and the pixel head stay frozen.
BUILTIN_TARGETS: tuple[str, ...] = (
    "q",
    "kv",
    "out",
    "mlp.0",
    "mlp.2",
    "text_proj",
    "pooled_proj.0",
    "pooled_proj.2",
    "text_pool_proj.1",
)
#: Bounds on what one fine-tune may ask for (inputs arrive over the API).
MAX_CLIPS = 2_000
MAX_CAPTION_CHARS = 500
MAX_STEPS = 20_000
MAX_RANK = 128
MAX_SCALE = 4.0
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

#: ``on_step(step, total, loss)`` after each optimiser step; returning False stops the run.
StepHook = Callable[[int, int, float], bool]


@dataclass(frozen=True)
class LoraSettings:
    """What a LoRA fine-tune does; recorded in ``adapter.json``. The defaults taught the built-in model a new
    brand colour in 120 steps (benchmarks/brand_lora.py)."""

    rank: int = 8
    steps: int = 120
    lr: float = 2e-3
    batch_size: int = 6
    warmup: int = 20
    #: module-name suffixes that get a LoRA (peft's ``target_modules``)
    target_modules: tuple[str, ...] = BUILTIN_TARGETS
    #: share of captions replaced by the empty prompt, so classifier-free guidance keeps working
    caption_dropout: float = 0.1
    #: as in the base model's training (TrainConfig): extra loss weight on object pixels, noise-level mix
    object_weight: float = 4.0
    uniform_sigma: float = 0.5
    pure_noise: float = 0.05
    seed: int = 0

    def __post_init__(self) -> None:
        checks: tuple[tuple[str, bool], ...] = (
            ("rank", 1 <= self.rank <= MAX_RANK),
            ("steps", 1 <= self.steps <= MAX_STEPS),
            ("lr", 0 < self.lr <= 0.1),
            ("batch_size", 1 <= self.batch_size <= 64),
            ("warmup", 0 <= self.warmup <= MAX_STEPS),
            ("target_modules", bool(self.target_modules) and all(self.target_modules)),
            ("caption_dropout", 0 <= self.caption_dropout < 1),
            ("object_weight", 0 <= self.object_weight <= 100),
            ("uniform_sigma", 0 <= self.uniform_sigma <= 1),
            ("pure_noise", 0 <= self.pure_noise <= 1),
        )
        for name, ok in checks:
            if not ok:
                raise InvalidParameter(name, f"LoRA setting {name}={getattr(self, name)!r} is out of range")


@dataclass
class TrainedAdapter:
    """A finished fine-tune: the adapter file, its sha256, its record, and the adapted transformer."""

    path: Path
    sha256: str
    record: dict[str, Any]
    transformer: Any = field(repr=False)


def fit_clip(frames: np.ndarray, num_frames: int = 16, size: int = 64) -> np.ndarray:
    """A clip (T, H, W, 3) uint8 as the built-in model takes it: ``num_frames`` evenly picked frames, the
    centre square resized to ``size``."""
    from PIL import Image

    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or 0 in frames.shape:
        got = f"{frames.dtype} {frames.shape}"
        raise InvalidParameter("clips", f"a clip must be uint8 (frames, height, width, 3), got {got}")
    t, h, w, _ = frames.shape
    picks = np.linspace(0, t - 1, num_frames).round().astype(int)
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    out = np.empty((num_frames, size, size, 3), dtype=np.uint8)
    for i, k in enumerate(picks):
        square = Image.fromarray(np.ascontiguousarray(frames[k, top : top + side, left : left + side]))
        out[i] = np.asarray(square.resize((size, size), Image.Resampling.BOX))
    return out


def _check_clips(clips: Sequence[tuple[np.ndarray, str]], shape: tuple[int, int, int, int]) -> None:
    if not 1 <= len(clips) <= MAX_CLIPS:
        raise InvalidParameter("clips", f"a fine-tune takes 1 to {MAX_CLIPS} clips, got {len(clips)}")
    for i, (frames, caption) in enumerate(clips):
        if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.shape != shape:
            got = f"{frames.dtype} {frames.shape}" if isinstance(frames, np.ndarray) else type(frames).__name__
            raise InvalidParameter("clips", f"clip {i} must be uint8 of shape {shape} (see fit_clip), got {got}")
        if not isinstance(caption, str) or not caption.strip() or len(caption) > MAX_CAPTION_CHARS:
            raise InvalidParameter("clips", f"clip {i} needs a caption of 1 to {MAX_CAPTION_CHARS} characters")


def _backgrounds(data: np.ndarray) -> np.ndarray:
    """Each clip's background colour (N, 3): the median of its border pixels over all frames."""
    border = np.concatenate(
        [data[:, :, 0], data[:, :, -1], data[:, :, 1:-1, 0], data[:, :, 1:-1, -1]], axis=2
    )  # (N, T, 2W + 2(H-2), 3)
    return np.median(border.reshape(len(data), -1, 3), axis=1)


def train_lora(
    base: Any,
    clips: Sequence[tuple[np.ndarray, str]],
    out: Path,
    settings: LoraSettings,
    on_step: StepHook | None = None,
    base_sha256: str = "",
) -> TrainedAdapter | None:
    """Train a LoRA adapter for the built-in pipeline ``base`` on ``clips`` (uint8 (T, H, W, 3), caption).

    Writes ``out/adapter.safetensors`` and ``out/adapter.json`` (``out`` must not exist) and returns them
    with the adapter's sha256. ``on_step(step, total, loss)`` runs after every step; when it returns False
    the run stops, returns None and leaves no ``out``. ``base`` is not changed.
    """
    import torch
    from peft import LoraConfig

    from reelfoundry.models.text_encoder import shared_encoder
    from reelfoundry.models.video_dit import VideoDiT
    from reelfoundry.training.builtin import flow_loss, learning_rate, noise_levels, object_weights, use_bf16_autocast

    # 1. Check inputs
    if not isinstance(getattr(base, "transformer", None), VideoDiT):
        raise InvalidParameter(
            "base", f"train_lora takes the built-in pipeline, not {type(base).__name__} (see train_pipeline_lora)"
        )
    cfg = base.transformer.config
    _check_clips(clips, (cfg.num_frames, cfg.sample_size, cfg.sample_size, cfg.in_channels))
    if out.exists():
        raise InvalidParameter("out", f"{out} already exists; a fine-tune writes a new adapter directory")
    if base_sha256 and not _SHA256.match(base_sha256):
        raise InvalidParameter("base_sha256", f"base_sha256 must be 64 lowercase hex digits, got {base_sha256!r}")
    started = time.perf_counter()
    data = np.stack([frames for frames, _ in clips])
    captions = [caption for _, caption in clips]
    backgrounds = torch.from_numpy(_backgrounds(data)).float().div_(127.5).sub_(1)

    # Loaded before seeding: building the encoder the first time draws from torch's RNG.
    encoder = shared_encoder("cpu")
    # The caller's torch RNG is left as it was: seeding here must not leak out of a pure function.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)

        # 2. A copy of the base transformer with a fresh adapter; only the adapter trains
        model = copy.deepcopy(base.transformer).float().train()
        model.requires_grad_(False)
        lora = LoraConfig(
            r=settings.rank,
            lora_alpha=settings.rank,
            target_modules=list(settings.target_modules),
            init_lora_weights=True,
        )
        try:
            model.add_adapter(lora)
        except ValueError as exc:  # peft: a target module that matches nothing
            raise InvalidParameter("target_modules", f"cannot add a LoRA to {settings.target_modules}: {exc}") from exc
        params = [p for n, p in model.named_parameters() if "lora_" in n]
        for p in params:
            p.requires_grad_(True)
        opt = torch.optim.AdamW(params, lr=settings.lr, weight_decay=0.0)
        shift = float(base.scheduler.config.shift)
        use_bf16 = use_bf16_autocast()

        # 3. Steps: a batch of clips picked by (seed, step), noised as in the base model's training
        losses: list[float] = []
        for step in range(settings.steps):
            rng = np.random.default_rng([settings.seed, step])
            pick = rng.choice(len(data), settings.batch_size, replace=len(data) < settings.batch_size)
            batch = torch.from_numpy(data[pick]).float().div_(127.5).sub_(1)
            weights = object_weights(batch, backgrounds[pick], settings.object_weight)
            prompts = ["" if rng.random() < settings.caption_dropout else captions[i] for i in pick]
            text = encoder(prompts)
            sigma = noise_levels(len(pick), shift, settings.uniform_sigma, settings.pure_noise)
            x = batch.permute(0, 4, 1, 2, 3).contiguous()
            noise = torch.randn_like(x)
            for group in opt.param_groups:
                group["lr"] = learning_rate(settings.lr, step, settings.steps, settings.warmup)
            loss = flow_loss(model, x, weights, text, sigma, noise, use_bf16)
            losses.append(_optimise(opt, params, loss))
            if on_step is not None and on_step(step + 1, settings.steps, losses[-1]) is False:
                return None
    model.eval()

    # 4. Write the adapter and its record next to ``out``, then move them into place in one rename
    record = {
        "format": "diffusers-lora",
        "weight_file": ADAPTER_FILE,
        "base_sha256": base_sha256,
        "settings": {**asdict(settings), "target_modules": list(settings.target_modules)},
        "clips": len(clips),
        "final_loss": float(np.mean(losses[-20:])),
        "wall_s": round(time.perf_counter() - started, 1),
    }
    sha256 = _write_atomically(out, model, lora, record)
    return TrainedAdapter(out / ADAPTER_FILE, sha256, {**record, "sha256": sha256}, model)


def _optimise(opt: Any, params: Any, loss: Any) -> float:
    """One optimiser step on ``loss`` (gradients clipped to norm 1); the loss as a float."""
    import torch

    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    return float(loss.item())


def adapter_state_dict(transformer: Any, adapter_name: str = "default") -> dict[str, Any]:
    """The LoRA weights of ``transformer`` keyed as diffusers' ``save_lora_weights`` keys them."""
    from peft.utils import get_peft_model_state_dict

    state = get_peft_model_state_dict(transformer, adapter_name=adapter_name)
    return {f"transformer.{k}": v.detach().float().contiguous() for k, v in sorted(state.items())}


def save_adapter(transformer: Any, path: Path, lora: Any, base_sha256: str = "", adapter_name: str = "default") -> str:
    """Write ``transformer``'s adapter to ``path`` (safetensors in diffusers' LoRA format); its sha256."""
    from safetensors.torch import save_file

    # Pipeline-level files key the config by component, as save_lora_weights packs it ("transformer.r", …).
    config = {f"transformer.{k}": sorted(v) if isinstance(v, set) else v for k, v in lora.to_dict().items()}
    metadata = {
        "format": "pt",
        LORA_METADATA_KEY: json.dumps(config, indent=2, sort_keys=True, default=str),
        BASE_METADATA_KEY: base_sha256,
    }
    save_file(adapter_state_dict(transformer, adapter_name), str(path), metadata=metadata)
    _sort_header(path)
    return _file_sha256(path)


def _sort_header(path: Path) -> None:
    """Rewrite a safetensors header with its keys sorted: the writer orders ``__metadata__`` as a hash map
    does, differently in every process, and one seed must give one file."""
    raw = path.read_bytes()
    length = int.from_bytes(raw[:8], "little")
    header = json.dumps(json.loads(raw[8 : 8 + length]), sort_keys=True, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)  # the format pads the header to 8 bytes with spaces
    path.write_bytes(len(header).to_bytes(8, "little") + header + raw[8 + length :])


def _write_atomically(out: Path, transformer: Any, lora: Any, record: dict[str, Any]) -> str:
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        sha256 = save_adapter(transformer, staging / ADAPTER_FILE, lora, str(record["base_sha256"]))
        (staging / ADAPTER_JSON).write_text(json.dumps({**record, "sha256": sha256}, indent=2, sort_keys=True) + "\n")
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return sha256


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_adapter(path: Path, expected_sha256: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The tensors and header metadata of a pinned safetensors adapter file.

    Refuses (ModelIntegrityError) anything that is not a ``.safetensors`` file whose sha256 is
    ``expected_sha256`` or that does not parse as safetensors: pickles never reach a loader.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load

    if not isinstance(expected_sha256, str) or not _SHA256.match(expected_sha256.lower()):
        raise ConfigurationError(f"the adapter's sha256 must be 64 hex digits, got {expected_sha256!r}")
    if path.suffix != ".safetensors":
        raise ModelIntegrityError(path.name, f"adapter {path.name!r} is not a .safetensors file; only safetensors load")
    if not path.is_file():
        raise ModelIntegrityError(path.name, f"adapter file {path} is missing")
    raw = path.read_bytes()  # hashed and parsed from the same bytes: nothing can swap the file in between
    actual = hashlib.sha256(raw).hexdigest()
    if actual != expected_sha256.lower():
        raise ModelIntegrityError(
            path.name, f"adapter {path.name!r} has sha256 {actual}, but {expected_sha256.lower()} is pinned"
        )
    try:
        tensors = load(raw)
        header_len = int.from_bytes(raw[:8], "little")
        metadata = json.loads(raw[8 : 8 + header_len]).get("__metadata__") or {}
    except (SafetensorError, ValueError, UnicodeDecodeError) as exc:
        raise ModelIntegrityError(path.name, f"adapter {path.name!r} is not a safetensors file: {exc}") from exc
    if not tensors or not all("lora" in k for k in tensors):
        raise ModelIntegrityError(path.name, f"adapter {path.name!r} holds no LoRA weights")
    return tensors, {str(k): str(v) for k, v in metadata.items()}


def load_adapter(
    pipeline: Any,
    path: Path,
    scale: float,
    expected_sha256: str,
    *,
    base_sha256: str = "",
    adapter_name: str = "lora",
) -> None:
    """Load the pinned LoRA adapter at ``path`` into ``pipeline`` at strength ``scale``.

    Pipelines with diffusers' LoRA loader (LTX-Video, Wan, …) load it through ``load_lora_weights``
    (which also converts other trainers' key layouts); the built-in pipeline through its transformer's
    ``load_lora_adapter``. The loader gets the verified tensors, not the path, so it reads no other bytes
    than the ones hashed; it then infers each module's rank from the weights and takes alpha = rank, which
    is how :func:`train_lora` trains (an alpha kept only in another trainer's header would be lost).
    With ``base_sha256``, an adapter that records another base is refused.
    """
    if not (isinstance(scale, (int, float)) and not isinstance(scale, bool) and 0 <= scale <= MAX_SCALE):
        raise ConfigurationError(f"the adapter's scale must be between 0 and {MAX_SCALE}, got {scale!r}")
    tensors, metadata = read_adapter(path, expected_sha256)
    recorded = metadata.get(BASE_METADATA_KEY, "")
    if base_sha256 and recorded and recorded != base_sha256:
        raise ModelIntegrityError(
            path.name, f"adapter {path.name!r} was trained on base {recorded}, not on this model's {base_sha256}"
        )
    try:
        if hasattr(pipeline, "load_lora_weights"):
            pipeline.load_lora_weights(tensors, adapter_name=adapter_name)
            pipeline.set_adapters([adapter_name], adapter_weights=[float(scale)])
            return
        config = json.loads(metadata[LORA_METADATA_KEY]) if LORA_METADATA_KEY in metadata else None
        transformer = pipeline.transformer
        transformer.load_lora_adapter(tensors, prefix="transformer", adapter_name=adapter_name, metadata=config)
        transformer.set_adapters([adapter_name], weights=[float(scale)])
    except (KeyError, ValueError, RuntimeError) as exc:
        raise ModelIntegrityError(path.name, f"adapter {path.name!r} does not fit this model: {exc}") from exc


def lora_card(
    base: ModelCard, model_id: str, adapter: Path, sha256: str, *, scale: float = 1.0, name: str = ""
) -> ModelCard:
    """A portfolio card for ``base`` with the pinned adapter: same backend and limits, ``options.lora`` added."""
    return base.model_copy(
        update={
            "id": model_id,
            "name": name or f"{base.name} + LoRA {model_id}",
            "options": {**base.options, "lora": {"path": str(adapter), "scale": scale, "sha256": sha256}},
            "quality": None,
            "metrics": {},
        },
        deep=True,
    )


#: Attention projections of diffusers' video transformers (LTX-Video, Wan): the usual LoRA targets.
DIFFUSERS_TARGETS: tuple[str, ...] = ("to_q", "to_k", "to_v", "to_out.0")


def _encode_ltx(pipe: Any, video: Any) -> tuple[Any, dict[str, Any]]:
    """LTX-Video: normalised, packed latents and the transformer's size arguments."""
    latents = pipe.vae.encode(video).latent_dist.mode()
    latents = pipe._normalize_latents(
        latents, pipe.vae.latents_mean, pipe.vae.latents_std, pipe.vae.config.scaling_factor
    )
    _, _, frames, height, width = latents.shape
    packed = pipe._pack_latents(latents, pipe.transformer_spatial_patch_size, pipe.transformer_temporal_patch_size)
    sizes = {
        "num_frames": frames,
        "height": height,
        "width": width,
        "rope_interpolation_scale": (
            pipe.vae_temporal_compression_ratio / 25,  # the pipeline's default frame rate
            pipe.vae_spatial_compression_ratio,
            pipe.vae_spatial_compression_ratio,
        ),
    }
    return packed, sizes


def _encode_wan(pipe: Any, video: Any) -> tuple[Any, dict[str, Any]]:
    """Wan: latents normalised as the pipeline's decode expects them."""
    import torch

    latents = pipe.vae.encode(video).latent_dist.mode()
    shape = (1, pipe.vae.config.z_dim, 1, 1, 1)
    mean = torch.tensor(pipe.vae.config.latents_mean).view(shape).to(latents)
    std = torch.tensor(pipe.vae.config.latents_std).view(shape).to(latents)
    return (latents - mean) / std, {}


def _prompt_ltx(pipe: Any, prompts: list[str], max_sequence_length: int) -> dict[str, Any]:
    embeds, mask, _, _ = pipe.encode_prompt(
        prompts, do_classifier_free_guidance=False, max_sequence_length=max_sequence_length
    )
    return {"encoder_hidden_states": embeds, "encoder_attention_mask": mask}


def _prompt_wan(pipe: Any, prompts: list[str], max_sequence_length: int) -> dict[str, Any]:
    embeds, _ = pipe.encode_prompt(prompts, do_classifier_free_guidance=False, max_sequence_length=max_sequence_length)
    return {"encoder_hidden_states": embeds}


#: Per pipeline class: how to turn a clip into the transformer's latents, and prompts into its text inputs.
_FAMILIES = {
    "LTXPipeline": (_encode_ltx, _prompt_ltx),
    "WanPipeline": (_encode_wan, _prompt_wan),
}


def train_pipeline_lora(
    pipe: Any,
    clips: Sequence[tuple[np.ndarray, str]],
    out: Path,
    settings: LoraSettings,
    on_step: StepHook | None = None,
    *,
    max_sequence_length: int = 128,
) -> TrainedAdapter | None:
    """Fine-tune a LoRA on a diffusers video pipeline's transformer (LTX-Video, Wan) with rectified flow.

    The same contract as :func:`train_lora`: clips are uint8 (T, H, W, 3) of one size the pipeline's VAE
    takes (e.g. 4k+1 frames for Wan, 8k+1 for LTX), the pipeline is not changed (its transformer is
    copied, so a large model needs twice its memory), a stopped run writes nothing, and the adapter loads
    back through ``load_adapter`` (``pipeline.load_lora_weights``). Use ``DIFFUSERS_TARGETS`` as the
    settings' target modules.
    """
    import torch
    import torch.nn.functional as F
    from peft import LoraConfig

    from reelfoundry.training.builtin import learning_rate, noise_levels

    # 1. Check inputs
    family = _FAMILIES.get(type(pipe).__name__)
    if family is None:
        raise InvalidParameter("base", f"LoRA fine-tuning supports {sorted(_FAMILIES)}, not {type(pipe).__name__}")
    encode_video, encode_prompt = family
    first = clips[0][0] if clips and isinstance(clips[0][0], np.ndarray) else None
    _check_clips(clips, first.shape if first is not None and first.ndim == 4 else (0, 0, 0, 3))
    if out.exists():
        raise InvalidParameter("out", f"{out} already exists; a fine-tune writes a new adapter directory")
    started = time.perf_counter()
    device, dtype = pipe._execution_device, pipe.transformer.dtype
    captions = [caption for _, caption in clips]

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)

        # 2. Each clip's latents, once (the VAE stays frozen)
        with torch.no_grad():
            encoded = []
            for frames, _ in clips:
                video = torch.from_numpy(frames).to(device, torch.float32).div(127.5).sub(1)
                encoded.append(encode_video(pipe, video.permute(3, 0, 1, 2)[None].to(dtype)))
        latents = torch.cat([latent for latent, _ in encoded])
        sizes = encoded[0][1]

        # 3. A copy of the transformer with a fresh adapter; only the adapter trains
        model = copy.deepcopy(pipe.transformer).train()
        model.requires_grad_(False)
        lora = LoraConfig(
            r=settings.rank,
            lora_alpha=settings.rank,
            target_modules=list(settings.target_modules),
            init_lora_weights=True,
        )
        try:
            model.add_adapter(lora)
        except ValueError as exc:
            raise InvalidParameter("target_modules", f"cannot add a LoRA to {settings.target_modules}: {exc}") from exc
        params = [p for n, p in model.named_parameters() if "lora_" in n]
        for p in params:
            p.requires_grad_(True)
        opt = torch.optim.AdamW(params, lr=settings.lr, weight_decay=0.0)
        shift = float(getattr(pipe.scheduler.config, "shift", 1.0))

        # 4. Rectified-flow steps: the transformer predicts noise − clean latents
        losses: list[float] = []
        for step in range(settings.steps):
            rng = np.random.default_rng([settings.seed, step])
            pick = rng.choice(len(latents), settings.batch_size, replace=len(latents) < settings.batch_size)
            prompts = ["" if rng.random() < settings.caption_dropout else captions[i] for i in pick]
            with torch.no_grad():
                text = encode_prompt(pipe, prompts, max_sequence_length)
            clean = latents[torch.from_numpy(pick)]
            sigma = noise_levels(len(pick), shift, settings.uniform_sigma, settings.pure_noise).to(device)
            noise = torch.randn_like(clean)
            s = sigma.view(-1, *([1] * (clean.ndim - 1))).to(clean.dtype)
            noisy = (1 - s) * clean + s * noise
            for group in opt.param_groups:
                group["lr"] = learning_rate(settings.lr, step, settings.steps, settings.warmup)
            pred = model(hidden_states=noisy, timestep=sigma * 1000, **text, **sizes, return_dict=False)[0]
            loss = F.mse_loss(pred.float(), (noise - clean).float())
            losses.append(_optimise(opt, params, loss))
            if on_step is not None and on_step(step + 1, settings.steps, losses[-1]) is False:
                return None
    model.eval()

    # 5. Write the adapter and its record, then move them into place in one rename
    record = {
        "format": "diffusers-lora",
        "weight_file": ADAPTER_FILE,
        "base_sha256": "",
        "pipeline": type(pipe).__name__,
        "settings": {**asdict(settings), "target_modules": list(settings.target_modules)},
        "clips": len(clips),
        "final_loss": float(np.mean(losses[-20:])),
        "wall_s": round(time.perf_counter() - started, 1),
    }
    sha256 = _write_atomically(out, model, lora, record)
    return TrainedAdapter(out / ADAPTER_FILE, sha256, {**record, "sha256": sha256}, model)
