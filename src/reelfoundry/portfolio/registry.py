"""The portfolio: model cards and the backends they name."""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from reelfoundry.config import Settings
from reelfoundry.errors import ConfigurationError, InvalidParameter, UnknownModel
from reelfoundry.models.builtin import builtin_card
from reelfoundry.portfolio.backends.template import TEMPLATE_CARD
from reelfoundry.portfolio.base import Backend
from reelfoundry.portfolio.config import SHIPPED_MODELS_FILE, load_models_file, shipped_cards
from reelfoundry.schema import ModelCard, Quality
from reelfoundry.schema.model_card import EvaluationSummary
from reelfoundry.store import Database
from reelfoundry.store import models as modelstore
from reelfoundry.store.tables import ModelCardRow

log = logging.getLogger(__name__)

#: Backends by registered name → import path. A card may also name an import path directly.
BACKENDS: dict[str, str] = {
    "template": "reelfoundry.portfolio.backends.template:TemplateBackend",
    "diffusers": "reelfoundry.portfolio.backends.diffusers:DiffusersBackend",
    "replicate": "reelfoundry.portfolio.backends.replicate:ReplicateBackend",
    "fal": "reelfoundry.portfolio.backends.fal:FalBackend",
}


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
    """The models this platform can run, by id: template and builtin, the models file's cards, and the cards
    added over the API (kept in the database, re-read at most every ``refresh_s``).

    A card added over the API is a candidate until onboarding approves it (``candidates``: the router skips
    them); the others are approved by definition. Each refresh also reads the newest NRES evaluation of every
    model: a card with one carries it as ``evaluation`` and its fidelity as ``quality`` (the router's score)."""

    def __init__(self, configured: Iterable[ModelCard] = (), *, refresh_s: float = 1.0) -> None:
        self.fixed: dict[str, ModelCard] = {TEMPLATE_CARD.id: TEMPLATE_CARD}
        builtin = builtin_card()
        if builtin is not None:
            self.fixed[builtin.id] = builtin
        for card in configured:
            self.fixed[card.id] = card
        self.added: dict[str, ModelCard] = {}
        #: Ids of the cards added over the API that are not approved yet.
        self.candidates: frozenset[str] = frozenset()
        self.evaluations: dict[str, EvaluationSummary] = {}
        self._backends: dict[str, Backend] = {}
        self._refresh_s = refresh_s
        self._loaded_at = -float("inf")
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> Portfolio:
        """The built-in cards plus the models file's (``models_file``, else the shipped one). A card whose backend
        cannot be made (unknown, or options it refuses) is an InvalidParameter naming the file and the card now,
        not a failure of every job the router sends to it."""
        source = str(settings.models_file or SHIPPED_MODELS_FILE)
        cards = load_models_file(settings.models_file) if settings.models_file else shipped_cards()
        for card in cards:
            if card.status is not None or card.evaluation is not None:
                field = "status" if card.status is not None else "evaluation"
                raise InvalidParameter("models_file", f"{source}: model {card.id!r}: {field} is set by the platform")
            try:
                backend_class(card.backend)(card)  # cheap: no weights load, no network
            except ConfigurationError as exc:
                raise InvalidParameter("models_file", f"{source}: model {card.id!r}: {exc.detail}") from None
        return cls(cards)

    @property
    def cards(self) -> dict[str, ModelCard]:
        """Every card by id, candidates included (a card added over the API never shadows a configured one); a
        card with an NRES evaluation carries it, and its fidelity as quality."""
        cards = {**self.added, **self.fixed}
        for model, summary in self.evaluations.items():
            card = cards.get(model)
            if card is not None:
                cards[model] = with_evaluation(card, summary)
        return cards

    def status(self, model: str) -> str:
        """candidate or approved (cards of the models file and built-in ones are approved by definition)."""
        return "candidate" if model in self.candidates and model not in self.fixed else "approved"

    def refresh(self, db: Database, *, force: bool = False) -> None:
        """Re-read the cards added over the API, unless done less than ``refresh_s`` ago."""
        now = time.monotonic()
        if not force and now - self._loaded_at < self._refresh_s:
            return
        with db.read() as session:
            rows = list(session.scalars(select(ModelCardRow)))
            evaluated = modelstore.latest_evaluations(session)
        added, candidates = {}, set()
        for row in rows:
            try:
                added[row.id] = ModelCard.model_validate(row.card).model_copy(update={"status": row.status})
            except ValueError:  # a card stored by an older version that no longer validates: skipped, logged
                log.warning("model card %s in the database no longer validates; ignored", row.id)
                continue
            if row.status != modelstore.APPROVED:
                candidates.add(row.id)
        evaluations = {}
        for model, evaluation in evaluated.items():
            try:
                evaluations[model] = evaluation_summary(evaluation.result)
            except ValueError:  # an evaluation stored by another version: the card keeps its own quality
                log.warning("the evaluation %s of %s does not summarise; ignored", evaluation.id, model)
        with self._lock:
            # A read that began before the newest one stored (a slow periodic refresh overtaken by the forced
            # one after POST /v1/models) would bring back the cards as they were: it is dropped.
            if now >= self._loaded_at:
                self.added, self.candidates, self.evaluations = added, frozenset(candidates), evaluations
                self._loaded_at = now

    def card(self, model: str) -> ModelCard:
        """The card of a model id; UnknownModel otherwise."""
        cards = self.cards
        if model not in cards:
            raise UnknownModel(model, sorted(cards))
        return cards[model]

    def backend(self, card: ModelCard) -> Backend:
        """The backend instance for a card, made once (cheap: backends load weights on first generate)."""
        backend = self._backends.get(card.id)
        if backend is None or backend.card != card:
            backend = self._backends[card.id] = backend_class(card.backend)(card)
        return backend


def evaluation_summary(result: dict[str, Any]) -> EvaluationSummary:
    """The card's summary of a stored NRES result (``NresResult.to_json()``); ValueError if it is not one."""
    return EvaluationSummary.model_validate(
        {
            "suite": result.get("suite"),
            "suite_version": result.get("suite_version"),
            "measured_at": result.get("date"),
            "fidelity": result.get("fidelity"),
            "frechet_distance": result.get("frechet_distance"),
            "nres": result.get("nres"),
            "seconds_per_clip": result.get("seconds_per_clip"),
            "cost_per_clip_usd": result.get("cost_per_clip_usd"),
            "peak_memory_mb": result.get("peak_memory_mb", 0.0),
            "feature_extractor": str(result.get("feature_extractor", ""))[:256],
            "reference": str(result.get("reference", ""))[:256],
        }
    )


def with_evaluation(card: ModelCard, summary: EvaluationSummary) -> ModelCard:
    """The card carrying its evaluation, and the evaluation's fidelity as its quality score (the router's)."""
    quality = Quality(
        score=round(summary.fidelity, 4),
        source=f"reelfoundry eval model: NRES fidelity, {summary.suite} suite {summary.suite_version}",
        measured_at=summary.measured_at,
    )
    return card.model_copy(update={"evaluation": summary, "quality": quality})
