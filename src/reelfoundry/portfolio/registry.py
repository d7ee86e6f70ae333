"""The portfolio: model cards, the backends they name, and resolving a request against a card."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from pathlib import Path

from reelfoundry.errors import ConfigurationError, InvalidParameter, UnknownModel
from reelfoundry.governance.policy import check_placement
from reelfoundry.models.builtin import builtin_card
from reelfoundry.portfolio.backends.template import TEMPLATE_CARD
from reelfoundry.portfolio.base import Backend, GenerationParams, check_card_limits
from reelfoundry.schema import ModelCard, VideoRequest

#: Backends by registered name → import path. A card may also name an import path directly.
BACKENDS: dict[str, str] = {
    "template": "reelfoundry.portfolio.backends.template:TemplateBackend",
    "diffusers": "reelfoundry.portfolio.backends.diffusers:DiffusersBackend",
}

#: What ``model: "auto"`` means until the router lands: the built-in model when its weights are
#: installed, else the template renderer.
FALLBACK_MODEL = "template"


def backend_class(name: str) -> type[Backend]:
    """Import the backend class registered as ``name`` (or given as ``module:Class``)."""
    path = BACKENDS.get(name, name)
    module_name, _, attr = path.partition(":")
    if not attr:
        raise ConfigurationError(f"backend {name!r} is neither registered nor a 'module:Class' path")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"backend {name!r} cannot be imported: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise ConfigurationError(f"backend {name!r} is not a Backend subclass")
    return cls


class Portfolio:
    """The models this platform can run, by id."""

    def __init__(self, extra: Iterable[ModelCard] = ()) -> None:
        self.cards: dict[str, ModelCard] = {TEMPLATE_CARD.id: TEMPLATE_CARD}
        builtin = builtin_card()
        if builtin is not None:
            self.cards[builtin.id] = builtin
        self._backends: dict[str, Backend] = {}
        for card in extra:
            self.cards[card.id] = card
        self.default_model = "builtin" if "builtin" in self.cards else FALLBACK_MODEL

    def card(self, model: str) -> ModelCard:
        """The card for a model id, or for ``auto``; UnknownModel otherwise."""
        model_id = self.default_model if model == "auto" else model
        if model_id not in self.cards:
            raise UnknownModel(model, sorted(self.cards))
        return self.cards[model_id]

    def choose(self, request: VideoRequest) -> ModelCard:
        """The card a request runs on: its model, or for ``auto`` the default — the template renderer
        when the request carries a template spec, since no other model can render one."""
        if request.model == "auto" and request.template is not None:
            card = self.cards[TEMPLATE_CARD.id]
        else:
            card = self.card(request.model)
        check_placement(request, card)  # data classes pin where a job may run
        return card

    def backend(self, card: ModelCard) -> Backend:
        """The backend instance for a card, made once (cheap: backends load weights on first generate)."""
        backend = self._backends.get(card.id)
        if backend is None or backend.card is not card:
            backend = self._backends[card.id] = backend_class(card.backend)(card)
        return backend


def resolve_params(card: ModelCard, request: VideoRequest, inputs: tuple[Path, ...] = ()) -> GenerationParams:
    """Fill a request's gaps from the card and check it against the card's limits."""
    fps = request.fps or card.default_fps
    if request.num_frames is not None:
        num_frames = request.num_frames
    elif request.duration_s is not None:
        num_frames = max(1, round(request.duration_s * fps))
    elif request.template is not None:
        num_frames = max(1, round(request.template.duration_s * fps))
    else:
        num_frames = card.default_num_frames
    if request.template is not None and card.backend != "template":
        raise InvalidParameter("template", f"a template spec is rendered by the template model, not by {card.id!r}")
    width = request.width or card.default_width
    height = request.height or card.default_height
    check_card_limits(card, num_frames, width, height)
    if request.seed is None:
        raise InvalidParameter("seed", "seed must be fixed before resolving (admission fills it)")
    return GenerationParams(
        prompt=request.prompt,
        negative_prompt=request.negative_prompt,
        num_frames=num_frames,
        fps=fps,
        width=width,
        height=height,
        seed=request.seed,
        steps=request.steps or card.default_steps,
        guidance_scale=request.guidance_scale if request.guidance_scale is not None else card.default_guidance_scale,
        template=request.template,
        inputs=inputs,
    )
