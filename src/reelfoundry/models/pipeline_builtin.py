"""BuiltinVideoPipeline: text → 16×64×64 clip with VideoDiT, flow matching and classifier-free guidance.

A ``DiffusionPipeline``, so ``save_pretrained`` / ``from_pretrained``, callbacks and the
interrupt flag work as for any diffusers pipeline, and the ``diffusers`` backend runs it.
The MiniLM text encoder is not saved with the pipeline (it ships in its own package);
it is attached on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from diffusers import DiffusionPipeline, FlowMatchEulerDiscreteScheduler
from diffusers.utils import BaseOutput

from reelfoundry.models.text_encoder import MiniLMEncoder, TextEmbeddings, shared_encoder
from reelfoundry.models.video_dit import VideoDiT


@dataclass
class BuiltinPipelineOutput(BaseOutput):
    """``frames``: float array (batch, frames, height, width, 3) in [0, 1]."""

    frames: np.ndarray


class BuiltinVideoPipeline(DiffusionPipeline):
    """The built-in text-to-video model."""

    model_cpu_offload_seq = "transformer"

    def __init__(self, transformer: VideoDiT, scheduler: FlowMatchEulerDiscreteScheduler) -> None:
        super().__init__()
        self.register_modules(transformer=transformer, scheduler=scheduler)
        self.text_encoder: MiniLMEncoder | None = None
        self._interrupt = False

    @property
    def interrupt(self) -> bool:
        """Set by a step callback to stop the denoising loop early."""
        return self._interrupt

    def encode_prompt(self, prompts: list[str]) -> TextEmbeddings:
        """MiniLM embeddings of the prompts, on the transformer's device."""
        if self.text_encoder is None:
            self.text_encoder = shared_encoder("cpu")
        return self.text_encoder(prompts).to(self._execution_device, self.transformer.dtype)

    def check_inputs(self, prompt: str | list[str], num_frames: int, height: int, width: int, steps: int) -> None:
        """Raise ValueError naming the parameter the model cannot honour."""
        cfg = self.transformer.config
        if num_frames != cfg.num_frames:
            raise ValueError(f"num_frames must be {cfg.num_frames} for this model, got {num_frames}")
        if (height, width) != (cfg.sample_size, cfg.sample_size):
            raise ValueError(f"height and width must be {cfg.sample_size}, got {height}×{width}")
        if steps < 1:
            raise ValueError(f"num_inference_steps must be at least 1, got {steps}")
        if not prompt:
            raise ValueError("prompt must not be empty")

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str],
        negative_prompt: str | list[str] | None = None,
        num_frames: int = 16,
        height: int = 64,
        width: int = 64,
        num_inference_steps: int = 20,
        guidance_scale: float = 4.0,
        guidance_min_sigma: float = 0.0,
        generator: torch.Generator | list[torch.Generator] | None = None,
        output_type: str = "np",
        callback_on_step_end: Callable[..., dict[str, Any]] | None = None,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
        return_dict: bool = True,
    ) -> BuiltinPipelineOutput | tuple[np.ndarray]:
        """Generate clips; frames come back as floats in [0, 1] (``output_type="np"``) or a tensor ("pt").

        Guidance applies only at noise levels σ ≥ ``guidance_min_sigma`` (guidance in a limited
        interval, Kynkäänniemi et al. 2024): it sets the layout, shape and motion early; at low noise
        it only overshoots the object's colours into speckles, and skipping it halves those steps.

        A batch: a list of prompts (and of negative prompts, one each, or one for all). ``generator``
        may be a list with one generator per prompt, as diffusers pipelines take it: each clip's
        starting noise is then drawn from its own generator, so a clip made in a batch is the clip its
        seed makes alone (up to float rounding). A single generator draws the whole batch's noise.
        """
        # 1. Check inputs
        self.check_inputs(prompt, num_frames, height, width, num_inference_steps)
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        batch = len(prompts)
        if isinstance(negative_prompt, list):
            if len(negative_prompt) != batch:
                raise ValueError(f"{len(negative_prompt)} negative prompts for {batch} prompts")
            negatives = [n or "" for n in negative_prompt]
        else:
            negatives = [negative_prompt or ""] * batch
        if isinstance(generator, list) and len(generator) != batch:
            raise ValueError(f"{len(generator)} generators for {batch} prompts: give one per prompt")
        self._interrupt = False
        device, dtype = self._execution_device, self.transformer.dtype

        # 2. Encode the prompt (and the negative one for classifier-free guidance)
        guided = guidance_scale > 1.0
        text = self.encode_prompt(negatives + prompts if guided else prompts)

        # 3. Prepare timesteps
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        timesteps = self.scheduler.timesteps

        # 4. Prepare the starting noise
        shape = (batch, self.transformer.config.in_channels, num_frames, height, width)
        if isinstance(generator, list):  # one clip's noise from each generator, as if each ran alone
            one = (1, *shape[1:])
            noise = [torch.randn(one, generator=g, device=g.device, dtype=torch.float32) for g in generator]
            latents = torch.cat([n.to(device) for n in noise]).to(device, dtype)
        else:
            noise_device = generator.device if generator is not None else device
            latents = torch.randn(shape, generator=generator, device=noise_device, dtype=torch.float32)
            latents = latents.to(device, dtype)

        # 5. Denoising loop
        for i, t in enumerate(timesteps):
            if self.interrupt:
                break
            guide = guided and float(t) / self.scheduler.config.num_train_timesteps >= guidance_min_sigma
            if guide:
                model_in = torch.cat([latents, latents])
                velocity = self.transformer(model_in, t.expand(2 * batch), text.states, text.mask, text.pooled)
                uncond, cond = velocity.chunk(2)
                velocity = uncond + guidance_scale * (cond - uncond)
            else:
                own = text[batch:] if guided else text
                velocity = self.transformer(latents, t.expand(batch), own.states, own.mask, own.pooled)
            latents = self.scheduler.step(velocity, t, latents).prev_sample
            if callback_on_step_end is not None:
                outputs = callback_on_step_end(self, i, t, {"latents": latents})
                latents = outputs.pop("latents", latents)

        # 6. Decode: the model works in pixel space, [-1, 1]
        video = ((latents.float().clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 4, 1)  # (B, F, H, W, C)
        frames: Any = video.cpu().numpy() if output_type == "np" else video

        # 7. Free resources
        self.maybe_free_model_hooks()
        if not return_dict:
            return (frames,)
        return BuiltinPipelineOutput(frames=frames)


#: Noise-level shift σ' = sσ / (1 + (s − 1)σ), the same in training and sampling (SD3's
#: resolution-dependent shift). A 4×8×8×3 pixel patch averages 768 values, so its colour is
#: still readable at σ = 0.95; without the shift the model never learns to ignore pure noise
#: and sampling from it yields a mosaic of per-patch colours instead of one scene.
SIGMA_SHIFT = 8.0


def new_pipeline(sigma_shift: float = SIGMA_SHIFT, **transformer_config: Any) -> BuiltinVideoPipeline:
    """A freshly initialised pipeline (for training)."""
    return BuiltinVideoPipeline(
        transformer=VideoDiT(**transformer_config),
        scheduler=FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=sigma_shift),
    )
