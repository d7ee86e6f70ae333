"""The portfolio: model cards and the backends they name."""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Iterable

from sqlalchemy import select

from reelfoundry.config import Settings
from reelfoundry.errors import ConfigurationError, InvalidParameter, UnknownModel
from reelfoundry.models.builtin import builtin_card
from reelfoundry.portfolio.backends.template import TEMPLATE_CARD
from reelfoundry.portfolio.base import Backend
from reelfoundry.portfolio.config import SHIPPED_MODELS_FILE, load_models_file, shipped_cards
from reelfoundry.schema import ModelCard
from reelfoundry.store import Database
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
    added over the API (kept in the database, re-read at most every ``refresh_s``)."""

    def __init__(self, configured: Iterable[ModelCard] = (), *, refresh_s: float = 1.0) -> None:
        self.fixed: dict[str, ModelCard] = {TEMPLATE_CARD.id: TEMPLATE_CARD}
        builtin = builtin_card()
        if builtin is not None:
            self.fixed[builtin.id] = builtin
        for card in configured:
            self.fixed[card.id] = card
        self.added: dict[str, ModelCard] = {}
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
            try:
                backend_class(card.backend)(card)  # cheap: no weights load, no network
            except ConfigurationError as exc:
                raise InvalidParameter("models_file", f"{source}: model {card.id!r}: {exc.detail}") from None
        return cls(cards)

    @property
    def cards(self) -> dict[str, ModelCard]:
        """Every card by id (a card added over the API never shadows a configured one)."""
        return {**self.added, **self.fixed}

    def refresh(self, db: Database, *, force: bool = False) -> None:
        """Re-read the cards added over the API, unless done less than ``refresh_s`` ago."""
        now = time.monotonic()
        if not force and now - self._loaded_at < self._refresh_s:
            return
        with db.read() as session:
            rows = list(session.scalars(select(ModelCardRow)))
        added = {}
        for row in rows:
            try:
                added[row.id] = ModelCard.model_validate(row.card)
            except ValueError:  # a card stored by an older version that no longer validates: skipped, logged
                log.warning("model card %s in the database no longer validates; ignored", row.id)
        with self._lock:
            # A read that began before the newest one stored (a slow periodic refresh overtaken by the forced
            # one after POST /v1/models) would bring back the cards as they were: it is dropped.
            if now >= self._loaded_at:
                self.added, self._loaded_at = added, now

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
