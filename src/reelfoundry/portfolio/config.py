"""The portfolio as configuration: model cards in a YAML file, like LiteLLM's ``config.yaml``.

::

    models:
      - id: ltx-video
        name: LTX-Video 0.9
        backend: diffusers
        options: {path: Lightricks/LTX-Video, pipeline_class: LTXPipeline}
        ...                                 # every ModelCard field; see schemas/ModelCard.json

The shipped file (``portfolio/models.yaml``) is used unless ``REELFOUNDRY_MODELS_FILE`` names
another. Errors name the file, the line of the card and the field.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from reelfoundry import safeyaml
from reelfoundry.errors import InvalidParameter
from reelfoundry.safeyaml import MAX_DEPTH as MAX_DEPTH
from reelfoundry.schema import ModelCard

SHIPPED_MODELS_FILE = Path(__file__).with_name("models.yaml")
#: A models file larger than this is refused before it is parsed (YAML is cheap to make expensive).
MAX_MODELS_FILE_BYTES = 1_048_576
MAX_CARDS = 1000
#: What a value in a card may be: what JSON can say, plus the dates YAML reads unquoted.
_PLAIN = (str, int, float, bool, type(None), list, dict, date)


def _named_field(message: str) -> str:
    """The card field a whole-card check's message is about (the first one it names), else ``card``."""
    names = ["resources.devices", *ModelCard.model_fields]
    found = [(message.find(n), -len(n), n) for n in names if re.search(rf"(?<![\w.]){re.escape(n)}(?!\w)", message)]
    return min(found)[2] if found else "card"


def card_error(exc: ValidationError, where: str) -> InvalidParameter:
    """The first problem of a card that failed validation, naming ``where`` and the field."""
    first = exc.errors()[0]
    message = first["msg"].removeprefix("Value error, ")
    field = ".".join(str(part) for part in first["loc"]) or _named_field(message)
    return InvalidParameter(field, f"{where}: field {field!r}: {message}")


def _not_plain(value: Any, path: str) -> str | None:
    """The path of the first value that JSON cannot carry (YAML's !!binary, !!set, ...), or None."""
    if not isinstance(value, _PLAIN):
        return f"{path}: a value of type {type(value).__name__} (only JSON values and dates)"
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        found = _not_plain(child, f"{path}.{key}")
        if found is not None:
            return found
    return None


def parse_models(text: str, source: str = "models file") -> list[ModelCard]:
    """Model cards from YAML text; InvalidParameter naming ``source``, the card's line and the field."""
    return [card for card, _ in parse_located(text, source)]


def parse_located(text: str, source: str = "models file") -> list[tuple[ModelCard, str]]:
    """:func:`parse_models`, each card with where it is (``source: line N (models[i])``) for later messages."""
    data, root = safeyaml.load(text, source, "models", MAX_MODELS_FILE_BYTES)
    if not isinstance(data, dict) or not isinstance(data.get("models"), list):
        raise InvalidParameter("models", f"{source}: line 1: field 'models' is missing (a list of model cards)")
    unknown = sorted(str(key) for key in data if key != "models")
    if unknown:
        raise InvalidParameter(unknown[0], f"{source}: unknown top-level field {unknown[0]!r}; only 'models'")
    entries: list[Any] = data["models"]
    if len(entries) > MAX_CARDS:
        raise InvalidParameter("models", f"{source}: {len(entries)} cards; at most {MAX_CARDS}")
    lines: list[int] = []
    for key, value in getattr(root, "value", []):
        if getattr(key, "value", None) == "models":
            lines = [item.start_mark.line + 1 for item in getattr(value, "value", [])]
    cards: list[tuple[ModelCard, str]] = []
    seen: dict[str, str] = {}
    for i, entry in enumerate(entries):
        where = f"{source}: line {lines[i] if i < len(lines) else '?'} (models[{i}])"
        if not isinstance(entry, dict):
            raise InvalidParameter("models", f"{where}: a model card is a mapping of fields")
        odd = _not_plain(entry, "card")
        if odd is not None:
            raise InvalidParameter("models", f"{where}: {odd}")
        try:
            card = ModelCard.model_validate(entry)
        except ValidationError as exc:
            raise card_error(exc, where) from None
        if card.id in seen:
            raise InvalidParameter("id", f"{where}: field 'id': {card.id!r} is already defined at {seen[card.id]}")
        seen[card.id] = where
        cards.append((card, where))
    return cards


def load_models_file(path: str | Path) -> list[ModelCard]:
    """The cards of a models file; InvalidParameter naming the file, line and field."""
    return [card for card, _ in load_located(path)]


def load_located(path: str | Path) -> list[tuple[ModelCard, str]]:
    """:func:`load_models_file`, each card with where it is."""
    path = Path(path)
    text = safeyaml.read_bounded(path, "models_file", MAX_MODELS_FILE_BYTES)
    return parse_located(text, str(path))


def shipped_cards() -> list[ModelCard]:
    """The cards of the shipped portfolio file."""
    return load_models_file(SHIPPED_MODELS_FILE)
