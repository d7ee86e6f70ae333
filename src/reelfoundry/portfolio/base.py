"""The backend contract: resolved parameters in, frames out, a callback per step.

A backend's ``generate()`` reads like a diffusers pipeline's ``__call__``:
numbered stages, and one step callback that reports progress and is where a
cancelled job stops (the callback raises :class:`GenerationCancelled`).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from reelfoundry.errors import InvalidParameter
from reelfoundry.schema import ModelCard, TemplateSpec

#: Called after each step with (steps done, total steps). May raise GenerationCancelled.
StepCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class GenerationParams:
    """A request resolved against a model card: every value is concrete."""

    prompt: str
    num_frames: int
    fps: int
    width: int
    height: int
    seed: int
    negative_prompt: str | None = None
    #: Denoising steps and guidance (None for backends that do not denoise).
    steps: int | None = None
    guidance_scale: float | None = None
    template: TemplateSpec | None = None
    #: Local paths of the request's input assets, in request order.
    inputs: tuple[Path, ...] = ()


@dataclass
class GenerationOutput:
    """uint8 RGB frames of shape (height, width, 3).

    ``frames`` is an array (frames, height, width, 3) or a lazy iterable that
    renders as it is consumed (the step callback then fires during encoding),
    which keeps long high-resolution clips out of memory.
    """

    frames: np.ndarray | Iterable[np.ndarray]
    fps: int
    num_frames: int
    #: Backend facts worth keeping (steps run, sampler, ...).
    info: dict[str, object] = field(default_factory=dict)
    #: A finished MP4 (a vendor API's output) that produce() signs as it is instead of encoding ``frames``;
    #: produce() owns the file from then on and removes it.
    video: Path | None = None


def check_card_limits(card: ModelCard, num_frames: int, width: int, height: int) -> None:
    """InvalidParameter naming the field when frames or size fall outside what the card allows."""
    if not card.min_num_frames <= num_frames <= card.max_num_frames:
        raise InvalidParameter(
            "num_frames",
            f"num_frames must be between {card.min_num_frames} and {card.max_num_frames} for {card.id}, "
            f"got {num_frames}",
        )
    if (num_frames - card.frame_offset) % card.frame_multiple:
        raise InvalidParameter(
            "num_frames",
            f"{card.id} needs num_frames = k*{card.frame_multiple}+{card.frame_offset}, got {num_frames}",
        )
    for name, value, most in (("width", width, card.max_width), ("height", height, card.max_height)):
        if not 1 <= value <= most:
            raise InvalidParameter(name, f"{name} must be between 1 and {most} for {card.id}, got {value}")


class Backend(abc.ABC):
    """One way of turning parameters into frames. One instance serves one model card."""

    #: Registry name, e.g. "template".
    name: ClassVar[str]

    def __init__(self, card: ModelCard) -> None:
        self.card = card

    def check_inputs(self, params: GenerationParams) -> None:  # noqa: B027 - optional hook, default accepts all
        """Raise InvalidParameter naming the field when the model cannot honour ``params``.

        Called at admission (so bad requests get a 4xx before they are queued) and
        again by the worker before it runs.
        """

    @abc.abstractmethod
    def generate(self, params: GenerationParams, callback: StepCallback | None = None) -> GenerationOutput:
        """Produce the frames. Must call ``callback`` at every step boundary."""

    def finetune(
        self,
        clips: Sequence[TrainingClip],
        spec: FinetuneSpec,
        out_dir: Path,
        callback: StepCallback | None = None,
    ) -> FinetuneOutput:
        """Train an adapter (LoRA) of this model on ``clips`` into ``out_dir``; ``callback`` at every optimiser
        step (it raises GenerationCancelled to stop: then nothing may be left in ``out_dir``). A model that cannot
        be fine-tuned says so (this default)."""
        raise InvalidParameter("base", f"model {self.card.id!r} ({self.name}) cannot be fine-tuned")

    def generate_batch(
        self, params_list: Sequence[GenerationParams], callback: StepCallback | None = None
    ) -> list[GenerationOutput]:
        """Produce the frames of several jobs, one output each, in order; ``callback`` at every step boundary
        of the batch (steps done, total steps of the whole batch).

        This default runs them one by one. A backend that can run compatible jobs together (one forward pass
        per step for all of them) overrides it; each output must then equal what ``generate`` makes of the same
        parameters, up to float rounding.
        """
        count = len(params_list)
        return [
            self.generate(params, None if callback is None else sequential_callback(callback, index, count))
            for index, params in enumerate(params_list)
        ]


@dataclass(frozen=True)
class TrainingClip:
    """One training example of a fine-tune: a local copy of a video (or image) asset and its caption."""

    path: Path
    caption: str
    asset_id: str = ""


@dataclass(frozen=True)
class FinetuneSpec:
    """What a fine-tune makes: an adapter of ``rank`` after ``steps`` optimiser steps at ``lr``, from ``seed``."""

    name: str
    rank: int = 8
    steps: int = 300
    lr: float = 1e-3
    seed: int = 0


@dataclass(frozen=True)
class FinetuneOutput:
    """The adapter a fine-tune wrote (a safetensors file, beside it whatever config the backend needs to load it
    again, all in ``files``) and the backend's facts (loss history, timings)."""

    adapter: Path
    files: tuple[Path, ...] = ()
    info: dict[str, Any] = field(default_factory=dict)


def visible_to(card: ModelCard, tenant_id: str) -> bool:
    """Whether a tenant's requests may use a card: every card, except a fine-tuned one (``options.tenant``: made
    from that tenant's brand assets), which only its own tenant sees."""
    owner = card.options.get("tenant")
    return owner is None or owner == tenant_id


def sequential_callback(callback: StepCallback, index: int, count: int) -> StepCallback:
    """A step callback for job ``index`` of ``count`` run one after another: steps counted over all of them."""

    def step(done: int, total: int) -> None:
        callback(index * total + done, count * total)

    return step
