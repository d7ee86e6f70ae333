"""The diffusers backend: any diffusers text- or image-to-video pipeline saved in a directory (or on the Hub).

One card names one pipeline. Its ``options``:

``path`` (required)
    A local pipeline directory (what ``save_pretrained`` writes) or a Hub repository id. A Hub id is
    fetched the way diffusers always does, so ``HF_HUB_OFFLINE=1`` limits it to the local cache; nothing
    here forces a download.
``pipeline_class``
    The diffusers class to load with, e.g. ``"WanPipeline"``, or an import path ``"module:Class"`` for a
    pipeline defined outside diffusers (the built-in model's). Default: ``DiffusionPipeline``, which picks
    the class named in the directory's ``model_index.json``.
``device``
    A torch device (``"cpu"``, ``"cuda"``, ``"cuda:1"``) or ``"auto"`` (CUDA when available, else CPU).
    Default ``"auto"``.
``dtype``
    ``"float32"``, ``"float16"``, ``"bfloat16"`` or ``"auto"`` (bfloat16 on CUDA, float32 on CPU).
    Default ``"auto"``.
``enable_model_cpu_offload``, ``enable_vae_tiling``, ``enable_vae_slicing``
    Memory savers, default false. Offload keeps each component in CPU memory until it runs (CUDA only;
    ignored on CPU); tiling and slicing decode the latents in pieces. Each is applied only where the
    pipeline or its VAE supports it.
``call_kwargs``
    Extra keyword arguments for every pipeline call, e.g. ``{"max_sequence_length": 16}``. They may not set
    what a request sets (prompt, size, frames, steps, guidance, seed, image, output type, callbacks).
``sha256``
    ``{relative file path: hex digest}``. Every listed file is hashed before the pipeline loads and a
    mismatch (or a missing file) raises :class:`ModelIntegrityError` naming the file.
``size_multiple``
    Width and height must be multiples of this. Default 8 (the VAE's spatial compression); LTX-Video
    needs 32, Wan 16.
``lora``
    ``{"path": FILE, "scale": 1.0, "sha256": HEX}``: a LoRA adapter (safetensors only, in diffusers' LoRA
    format or any layout the pipeline's ``load_lora_weights`` converts) loaded on top of the pipeline at
    ``scale`` after its sha256 matches; the built-in pipeline takes it through its transformer
    (:func:`reelfoundry.training.lora.load_adapter`). An adapter that records another base model's
    transformer sha256 than the card pins is refused.

The pipeline loads on the first ``generate()`` and stays on the backend instance, so a worker process
that keeps its backends runs later jobs without loading again. torch and diffusers are imported only
then, which keeps the API process (it builds backends to call ``check_inputs`` at admission) light.

Batches: ``generate_batch`` runs compatible jobs (same frames, size, steps, guidance, and all with or all without
a negative prompt) as one pipeline call with a list of prompts and a list of generators, one seeded generator per
job, as diffusers pipelines take them: one forward pass per step for the batch, and each job's starting noise is
the noise its seed gives alone, so its clip is the one it would get alone up to float rounding. Jobs that differ
are run as separate calls; image-to-video jobs and pipelines whose ``__call__`` takes no lists run one by one.

A cancel arrives as :class:`GenerationCancelled` raised by the step callback inside diffusers'
``callback_on_step_end``. It propagates straight out of the pipeline call rather than setting the
pipeline's ``_interrupt`` flag: the flag only skips the remaining steps, after which the pipeline still
decodes the half-denoised latents, and on a large model that decode alone can outlast the engine's
cancel grace and get the worker (and its loaded pipeline) killed.
"""

from __future__ import annotations

import importlib
import inspect
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from PIL import Image, ImageOps

from reelfoundry.errors import ConfigurationError, GenerationCancelled, InvalidParameter, ModelIntegrityError
from reelfoundry.media.probe import file_digest
from reelfoundry.portfolio.base import (
    Backend,
    FinetuneOutput,
    FinetuneSpec,
    GenerationOutput,
    GenerationParams,
    StepCallback,
    TrainingClip,
    check_card_limits,
    sequential_callback,
)
from reelfoundry.schema import ModelCard

if TYPE_CHECKING:
    import torch

#: A loaded diffusers pipeline. Its class is picked at run time (often from model_index.json) and diffusers'
#: own annotations resolve to placeholder classes under a type checker, so it is not typed further.
Pipeline = Any

_OPTIONS = frozenset(
    {
        "path",
        "pipeline_class",
        "device",
        "dtype",
        "enable_model_cpu_offload",
        "enable_vae_tiling",
        "enable_vae_slicing",
        "call_kwargs",
        "sha256",
        "size_multiple",
        "lora",
        # A fine-tuned model's owner (only that tenant's requests see it): read by admission, not by the pipeline.
        "tenant",
    }
)
_DTYPES = ("auto", "float32", "float16", "bfloat16")
#: Call arguments that come from the request or from this backend, never from ``call_kwargs``.
_RESERVED = frozenset(
    {
        "prompt",
        "negative_prompt",
        "num_frames",
        "height",
        "width",
        "num_inference_steps",
        "guidance_scale",
        "generator",
        "image",
        "output_type",
        "return_dict",
        "callback_on_step_end",
        "callback_on_step_end_tensor_inputs",
        "latents",
    }
)


def _option_bool(options: dict[str, Any], key: str) -> bool:
    value = options.get(key, False)
    if not isinstance(value, bool):
        raise ConfigurationError(f"diffusers option {key!r} must be true or false, got {value!r}")
    return value


def verify_files(directory: Path, expected: dict[str, str]) -> None:
    """Hash each listed file under ``directory``; ModelIntegrityError naming the first missing or different one."""
    root = directory.resolve()
    for relative, digest in expected.items():
        path = (root / relative).resolve()
        if not path.is_relative_to(root):
            raise ConfigurationError(f"sha256 entry {relative!r} points outside the model directory {root}")
        if not path.is_file():
            raise ModelIntegrityError(relative, f"model file {relative!r} is missing from {root}")
        actual = file_digest(path)[1]
        if actual != digest.lower():
            raise ModelIntegrityError(
                relative, f"model file {relative!r} has sha256 {actual}, but the card pins {digest.lower()}"
            )


def batch_key(params: GenerationParams) -> tuple[object, ...]:
    """Jobs with equal keys can share one pipeline call: same frames, size, steps and guidance, and either all or
    none with a negative prompt (a pipeline's default negative prompt is not ours to guess)."""
    return (
        params.num_frames,
        params.width,
        params.height,
        params.steps,
        params.guidance_scale,
        params.negative_prompt is None,
    )


def takes_lists(pipe: Any) -> bool:
    """Whether a pipeline's ``__call__`` takes lists of prompts and of generators (diffusers pipelines do)."""
    try:
        parameters = inspect.signature(pipe.__call__).parameters
    except (TypeError, ValueError):
        return False
    return all(
        name in parameters and "list" in str(parameters[name].annotation).lower() for name in ("prompt", "generator")
    )


def split_videos(frames: Any, count: int) -> list[Any]:
    """A batched pipeline output's ``frames`` as one entry per video (each for :func:`frames_to_uint8`)."""
    if isinstance(frames, np.ndarray) and frames.ndim == 5:
        videos: list[Any] = list(frames)
    elif isinstance(frames, (list, tuple)):
        videos = list(frames)
    else:
        raise ConfigurationError(f"the pipeline returned frames of an unexpected kind: {type(frames).__name__}")
    if len(videos) != count:
        raise ConfigurationError(f"the pipeline returned {len(videos)} videos for a batch of {count} prompts")
    return videos


def frames_to_uint8(frames: Any) -> np.ndarray:
    """A pipeline's ``frames`` (one video or a batch; array, list of arrays or of PIL images) as uint8 (F, H, W, 3)."""
    if isinstance(frames, np.ndarray):
        video: Any = frames[0] if frames.ndim == 5 else frames
    elif isinstance(frames, (list, tuple)) and frames:
        first = frames[0]
        # A batch holds one entry per video: a list of frames or a 4-D array.
        batched = isinstance(first, (list, tuple)) or (isinstance(first, np.ndarray) and first.ndim == 4)
        video = first if batched else frames
    else:
        raise ConfigurationError(f"the pipeline returned frames of an unexpected kind: {type(frames).__name__}")
    array = np.stack([np.asarray(f) for f in video]) if isinstance(video, (list, tuple)) else np.asarray(video)
    if array.ndim != 4 or array.shape[-1] not in (3, 4):
        raise ConfigurationError(f"the pipeline returned frames of shape {array.shape}, not (frames, H, W, 3)")
    array = array[..., :3]
    if np.issubdtype(array.dtype, np.floating):
        # output_type="np" is float in [0, 1]; round rather than truncate so 1.0 stays 255 and 0.5 maps to 128.
        array = np.rint(np.clip(array, 0.0, 1.0) * 255.0).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise ConfigurationError(f"the pipeline returned frames of dtype {array.dtype}, not float or uint8")
    return np.ascontiguousarray(array)


class DiffusersBackend(Backend):
    """Runs a diffusers video pipeline named by the card's ``options`` (see the module docstring)."""

    name: ClassVar[str] = "diffusers"

    def __init__(self, card: ModelCard) -> None:
        super().__init__(card)
        options = card.options
        unknown = sorted(set(options) - _OPTIONS)
        if unknown:
            raise ConfigurationError(
                f"card {card.id!r}: unknown diffusers options {unknown}; known: {sorted(_OPTIONS)}"
            )
        path = options.get("path")
        if not isinstance(path, str) or not path:
            raise ConfigurationError(f"card {card.id!r}: the diffusers option 'path' (directory or Hub id) is required")
        self.path = path
        self.pipeline_class = str(options.get("pipeline_class", "DiffusionPipeline"))
        self.device = str(options.get("device", "auto"))
        self.dtype = str(options.get("dtype", "auto"))
        if self.dtype not in _DTYPES:
            raise ConfigurationError(f"card {card.id!r}: dtype must be one of {_DTYPES}, got {self.dtype!r}")
        self.cpu_offload = _option_bool(options, "enable_model_cpu_offload")
        self.vae_tiling = _option_bool(options, "enable_vae_tiling")
        self.vae_slicing = _option_bool(options, "enable_vae_slicing")
        call_kwargs = options.get("call_kwargs", {})
        if not isinstance(call_kwargs, dict):
            raise ConfigurationError(f"card {card.id!r}: call_kwargs must be an object, got {call_kwargs!r}")
        clash = sorted(_RESERVED & set(call_kwargs))
        if clash:
            raise ConfigurationError(f"card {card.id!r}: call_kwargs may not set {clash}; requests set those")
        self.call_kwargs: dict[str, Any] = dict(call_kwargs)
        sha256 = options.get("sha256", {})
        if not isinstance(sha256, dict) or not all(isinstance(v, str) for v in sha256.values()):
            raise ConfigurationError(f"card {card.id!r}: sha256 must map file paths to hex digests")
        self.sha256: dict[str, str] = dict(sha256)
        size_multiple = options.get("size_multiple", 8)
        if not isinstance(size_multiple, int) or isinstance(size_multiple, bool) or size_multiple < 1:
            raise ConfigurationError(
                f"card {card.id!r}: size_multiple must be a positive integer, got {size_multiple!r}"
            )
        self.size_multiple = size_multiple
        self.lora = _lora_option(card.id, options.get("lora"))
        self._pipe: Pipeline | None = None

    def finetune(
        self,
        clips: Sequence[TrainingClip],
        spec: FinetuneSpec,
        out_dir: Path,
        callback: StepCallback | None = None,
    ) -> FinetuneOutput:
        """Train a LoRA adapter of this card's pipeline on the clips (:mod:`reelfoundry.training.lora`: the built-in
        model's transformer, or an LTX/Wan pipeline's) into ``out_dir``: ``adapter.safetensors`` and its record
        ``adapter.json``. A cancel (``callback`` raising GenerationCancelled) stops it at the next step with nothing
        written."""
        from reelfoundry.models.video_dit import VideoDiT
        from reelfoundry.training.lora import (
            BUILTIN_TARGETS,
            DIFFUSERS_TARGETS,
            LoraSettings,
            fit_clip,
            train_lora,
            train_pipeline_lora,
        )

        pipe = self.pipeline()
        builtin = isinstance(getattr(pipe, "transformer", None), VideoDiT)
        data = [(self._training_frames(clip.path, builtin), clip.caption) for clip in clips]
        if builtin:
            data = [(fit_clip(frames), caption) for frames, caption in data]
        # LoRA on the built-in model's attention, MLPs and prompt projections; on a pipeline's transformer, on the
        # module names diffusers' LoRA loaders know.
        targets = BUILTIN_TARGETS if builtin else DIFFUSERS_TARGETS
        settings = LoraSettings(rank=spec.rank, steps=spec.steps, lr=spec.lr, seed=spec.seed, target_modules=targets)
        stopped: list[GenerationCancelled] = []

        def on_step(step: int, total: int, loss: float) -> bool:
            if callback is not None:
                try:
                    callback(step, total)
                except GenerationCancelled as cancel:
                    stopped.append(cancel)
                    return False
            return True

        target = out_dir / "lora"
        if builtin:
            base = self.sha256.get("transformer/diffusion_pytorch_model.safetensors", "")
            trained = train_lora(pipe, data, target, settings, on_step, base_sha256=base.lower())
        else:
            trained = train_pipeline_lora(pipe, data, target, settings, on_step)
        if trained is None:
            raise stopped[0] if stopped else GenerationCancelled(f"the fine-tune of {self.card.id} was stopped")
        adapter, record = out_dir / "adapter.safetensors", out_dir / "adapter.json"
        (target / "adapter.safetensors").replace(adapter)
        (target / "adapter.json").replace(record)
        target.rmdir()
        return FinetuneOutput(adapter, files=(record,), info={"clips": len(data), "sha256": trained.sha256})

    def _training_frames(self, path: Path, builtin: bool) -> np.ndarray:
        """A training clip's frames, uint8 (T, H, W, 3): a video's (at most 2,000 frames decoded), or an image held
        still; for a pipeline other than the built-in one, at the card's default size and a frame count its VAE
        takes."""
        import av

        from reelfoundry.evaluation.nres import read_frames

        card = self.card
        try:
            longest = 128 if builtin else max(card.default_width, card.default_height)
            frames = read_frames(path, limit=2000, max_side=longest)
        except (av.FFmpegError, ValueError):
            try:
                with Image.open(path) as opened:
                    still = np.asarray(ImageOps.exif_transpose(opened).convert("RGB"))
            except (OSError, Image.DecompressionBombError) as exc:
                raise InvalidParameter("collection", f"a training clip ({path.name}) is not a video or image") from exc
            frames = np.repeat(still[None], 16, axis=0)
        if builtin:
            return frames
        size = (card.default_width, card.default_height)
        multiple, offset = card.frame_multiple or 1, card.frame_offset or 0
        usable = min(len(frames), card.default_num_frames)
        count = max(offset + multiple, ((usable - offset) // multiple) * multiple + offset)
        picks = np.linspace(0, len(frames) - 1, count).round().astype(int)
        return np.stack([np.asarray(Image.fromarray(frames[i]).resize(size, Image.Resampling.BICUBIC)) for i in picks])

    def check_inputs(self, params: GenerationParams) -> None:
        """Refuse frames, sizes, steps, guidance and inputs the card's pipeline cannot take, naming the field."""
        card = self.card
        check_card_limits(card, params.num_frames, params.width, params.height)
        for field, value in (("width", params.width), ("height", params.height)):
            if value % self.size_multiple:
                raise InvalidParameter(
                    field, f"{card.id} needs {field} to be a multiple of {self.size_multiple}, got {value}"
                )
        if params.steps is not None and params.steps < 1:
            raise InvalidParameter("steps", f"steps must be at least 1, got {params.steps}")
        if params.guidance_scale is not None and not (
            params.guidance_scale >= 0 and math.isfinite(params.guidance_scale)
        ):
            raise InvalidParameter("guidance_scale", f"guidance_scale must be 0 or more, got {params.guidance_scale}")
        if card.task == "image-to-video":
            if not params.inputs:
                raise InvalidParameter("inputs", f"{card.id} is image-to-video: give the first frame as inputs[0]")
            try:
                with Image.open(params.inputs[0]) as image:
                    image.verify()
            except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
                raise InvalidParameter(
                    "inputs", f"inputs[0] ({params.inputs[0].name}) is not a readable image: {exc}"
                ) from exc

    def generate(self, params: GenerationParams, callback: StepCallback | None = None) -> GenerationOutput:
        """Run the pipeline once; ``callback(done, total)`` after each denoising step."""
        import torch

        # 1. Check inputs
        self.check_inputs(params)

        # 2. Load the pipeline (once per backend instance)
        pipe = self.pipeline()

        # 3. Seeded noise, drawn on the device the pipeline runs on
        device = pipe._execution_device
        generator = torch.Generator(device=device).manual_seed(params.seed)

        # 4. Call arguments: the card's fixed ones, then the request's
        on_step_end, steps_done = self._step_hook(params, callback)
        kwargs = self._kwargs(params, params.prompt, params.negative_prompt, generator, on_step_end)
        if self.card.task == "image-to-video":
            with Image.open(params.inputs[0]) as opened:
                kwargs["image"] = ImageOps.exif_transpose(opened).convert("RGB")

        # 5. Denoise and decode; a cancel raised by the callback ends the call at that step boundary
        output = self._call(pipe, kwargs)

        # 6. Frames as uint8, checked against the request
        return self._output(pipe, params, output.frames, steps_done[0])

    def generate_batch(
        self, params_list: Sequence[GenerationParams], callback: StepCallback | None = None
    ) -> list[GenerationOutput]:
        """Compatible jobs in one pipeline call each (see the module docstring); ``callback`` per step of the
        batch. Outputs in the order of ``params_list``."""
        import torch

        # 1. Check inputs; what cannot be batched runs one by one
        for params in params_list:
            self.check_inputs(params)
        if len(params_list) < 2 or self.card.task == "image-to-video":
            return super().generate_batch(params_list, callback)
        pipe = self.pipeline()
        if not takes_lists(pipe):
            return super().generate_batch(params_list, callback)

        # 2. Group compatible jobs; each group is one call
        groups: dict[tuple[object, ...], list[int]] = {}
        for index, params in enumerate(params_list):
            groups.setdefault(batch_key(params), []).append(index)
        outputs: dict[int, GenerationOutput] = {}
        device = pipe._execution_device
        for number, members in enumerate(groups.values()):
            batch = [params_list[i] for i in members]
            first = batch[0]

            # 3. One seeded generator per job: its noise is what it would draw alone
            generators = [torch.Generator(device=device).manual_seed(p.seed) for p in batch]

            # 4. Call arguments, with lists for what differs between jobs
            hook = (
                callback if callback is None or len(groups) == 1 else sequential_callback(callback, number, len(groups))
            )
            on_step_end, steps_done = self._step_hook(first, hook)
            negatives = None if first.negative_prompt is None else [p.negative_prompt or "" for p in batch]
            kwargs = self._kwargs(first, [p.prompt for p in batch], negatives, generators, on_step_end)

            # 5. Denoise and decode the whole group
            output = self._call(pipe, kwargs)

            # 6. Each job's frames, checked against its request
            for i, video in zip(members, split_videos(output.frames, len(batch)), strict=True):
                outputs[i] = self._output(pipe, params_list[i], video, steps_done[0], batch=len(batch))
        return [outputs[i] for i in range(len(params_list))]

    def _step_hook(
        self, params: GenerationParams, callback: StepCallback | None
    ) -> tuple[Callable[..., dict[str, Any]], list[int]]:
        """diffusers' ``callback_on_step_end`` reporting to ``callback``, and a one-item list of the steps done."""
        steps_done = [0]

        def on_step_end(pipeline: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            steps_done[0] = step + 1
            if callback is not None:
                # num_timesteps counts the loop's iterations, which differs from the steps asked for when a
                # scheduler calls the model more than once per step.
                callback(step + 1, int(getattr(pipeline, "num_timesteps", None) or params.steps or step + 1))
            return tensors

        return on_step_end, steps_done

    def _kwargs(
        self,
        params: GenerationParams,
        prompt: str | list[str],
        negative_prompt: str | list[str] | None,
        generator: Any,
        on_step_end: Callable[..., dict[str, Any]],
    ) -> dict[str, Any]:
        """The card's fixed call arguments, then the request's; unset values are left to the pipeline."""
        kwargs: dict[str, Any] = {
            **self.call_kwargs,
            "prompt": prompt,
            "num_frames": params.num_frames,
            "height": params.height,
            "width": params.width,
            "generator": generator,
            "output_type": "np",
            "callback_on_step_end": on_step_end,
        }
        if negative_prompt is not None:
            kwargs["negative_prompt"] = negative_prompt
        if params.steps is not None:
            kwargs["num_inference_steps"] = params.steps
        if params.guidance_scale is not None:
            kwargs["guidance_scale"] = params.guidance_scale
        return kwargs

    @staticmethod
    def _call(pipe: Pipeline, kwargs: dict[str, Any]) -> Any:
        try:
            return pipe(**kwargs)
        except BaseException:
            # With CPU offload a call cut short leaves its current component on the GPU; put it back.
            pipe.maybe_free_model_hooks()
            raise

    def _output(
        self, pipe: Pipeline, params: GenerationParams, raw: Any, steps: int, batch: int = 1
    ) -> GenerationOutput:
        frames = frames_to_uint8(raw)
        expected = (params.num_frames, params.height, params.width)
        if frames.shape[:3] != expected:
            raise ConfigurationError(
                f"{self.card.id}'s pipeline returned {frames.shape[0]} frames of {frames.shape[2]}x{frames.shape[1]} "
                f"for a request of {expected[0]} frames of {expected[2]}x{expected[1]}; the card's frame_multiple, "
                "frame_offset or size_multiple do not match what the pipeline accepts"
            )
        info: dict[str, object] = {
            "steps": steps,
            "pipeline": type(pipe).__name__,
            "device": str(pipe._execution_device),
            "dtype": str(pipe.dtype),
        }
        if batch > 1:
            info["batch"] = batch
        return GenerationOutput(frames=frames, fps=params.fps, num_frames=frames.shape[0], info=info)

    def pipeline(self) -> Pipeline:
        """The loaded pipeline: verified and loaded on first use, then kept on this instance."""
        if self._pipe is None:
            self._pipe = self._load()
        return self._pipe

    def _load(self) -> Pipeline:
        import diffusers
        import torch

        cls: Pipeline = _pipeline_class(self.pipeline_class)
        # A flag, not an inline test, so the type checker keeps ``cls`` dynamic (diffusers' loaders are untyped).
        is_pipeline = isinstance(cls, type) and issubclass(cls, diffusers.DiffusionPipeline)
        if not is_pipeline:
            raise ConfigurationError(f"{self.pipeline_class!r} is not a diffusers pipeline class")
        name = ("cuda" if torch.cuda.is_available() else "cpu") if self.device == "auto" else self.device
        try:
            device = torch.device(name)
        except RuntimeError as exc:
            raise ConfigurationError(f"card {self.card.id!r}: bad device {self.device!r}: {exc}") from exc
        dtype = _torch_dtype(self.dtype, device)
        try:
            directory = self._local_directory(cls)
            verify_files(directory, self.sha256)
            pipe = _quiet_from_pretrained(cls, directory, dtype)
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot load a diffusers pipeline from {self.path!r}: {exc}") from exc
        if self.lora is not None:
            from reelfoundry.training.lora import load_adapter

            base = next((v for k, v in self.sha256.items() if k.startswith("transformer/") and ".safetensors" in k), "")
            load_adapter(pipe, self.lora.path, self.lora.scale, self.lora.sha256, base_sha256=base.lower())
        if "callback_on_step_end" not in inspect.signature(pipe.__call__).parameters:
            # Without a per-step hook there is no progress and no cancellation between steps.
            raise ConfigurationError(f"{type(pipe).__name__} has no callback_on_step_end; it cannot report steps")
        if self.cpu_offload and device.type == "cuda":
            pipe.enable_model_cpu_offload(device=device)
        else:
            pipe.to(device)
        vae: Any = getattr(pipe, "vae", None)
        if self.vae_tiling and hasattr(vae, "enable_tiling"):
            vae.enable_tiling()
        if self.vae_slicing and hasattr(vae, "enable_slicing"):
            vae.enable_slicing()
        # Progress goes through the step callback; a tqdm bar would only fill the worker's log.
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def _local_directory(self, cls: type[Pipeline]) -> Path:
        """The pipeline's directory: ``path`` itself, or the Hub snapshot diffusers resolves it to."""
        local = Path(self.path).expanduser()
        if local.is_dir():
            return local
        if local.is_absolute() or self.path.startswith("."):
            raise ConfigurationError(f"card {self.card.id!r}: no pipeline directory at {self.path}")
        # DiffusionPipeline.download fetches only what from_pretrained would, and honours HF_HUB_OFFLINE.
        return Path(cls.download(self.path))


@dataclass(frozen=True)
class LoraOption:
    """The card's ``lora`` option: which adapter, how strong, and its pinned sha256."""

    path: Path
    scale: float
    sha256: str


def _lora_option(card_id: str, value: object) -> LoraOption | None:
    if value is None:
        return None
    # ``key`` and ``files``: where a fine-tune's adapter lives in the object store; the engine fills ``path``.
    if not isinstance(value, dict) or not set(value) <= {"path", "scale", "sha256", "key", "files"}:
        raise ConfigurationError(f"card {card_id!r}: lora must be {{path, scale, sha256}}, got {value!r}")
    path, scale, sha256 = value.get("path"), value.get("scale", 1.0), value.get("sha256")
    if not isinstance(path, str) or not path.endswith(".safetensors"):
        raise ConfigurationError(f"card {card_id!r}: lora.path must name a .safetensors file, got {path!r}")
    if not isinstance(scale, (int, float)) or isinstance(scale, bool) or not 0 <= scale <= 4:
        raise ConfigurationError(f"card {card_id!r}: lora.scale must be between 0 and 4, got {scale!r}")
    if not isinstance(sha256, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
        raise ConfigurationError(f"card {card_id!r}: lora.sha256 must be the adapter's 64-hex-digit sha256")
    return LoraOption(Path(path).expanduser(), float(scale), sha256.lower())


def _pipeline_class(name: str) -> Any:
    """A diffusers class by name, or any class by import path ``module:Class`` (e.g. the built-in pipeline)."""
    import diffusers

    if ":" not in name:
        return getattr(diffusers, name, None)
    module, _, attr = name.partition(":")
    try:
        return getattr(importlib.import_module(module), attr, None)
    except ImportError as exc:
        raise ConfigurationError(f"pipeline_class {name!r} cannot be imported: {exc}") from exc


def _torch_dtype(name: str, device: torch.device) -> torch.dtype:
    import torch

    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    dtype: torch.dtype = getattr(torch, name)
    return dtype


def _quiet_from_pretrained(cls: Pipeline, directory: Path, dtype: torch.dtype) -> Pipeline:
    """``cls.from_pretrained`` without diffusers' "Loading pipeline components" bar: progress is ours to show."""
    from diffusers.utils import logging as diffusers_logging

    shown = diffusers_logging.is_progress_bar_enabled()
    diffusers_logging.disable_progress_bar()
    try:
        return cls.from_pretrained(str(directory), dtype=dtype)
    finally:
        if shown:
            diffusers_logging.enable_progress_bar()
