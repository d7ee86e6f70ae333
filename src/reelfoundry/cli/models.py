"""``reelfoundry models list|show|add|remove`` and ``reelfoundry schema export``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer

from reelfoundry.cli.client import CLIError
from reelfoundry.cli.common import (
    AsJson,
    client,
    common_options,
    console,
    emit,
    friendly,
    print_json,
    show_record,
    state,
    table,
)

models_app = typer.Typer(help="The model portfolio.", no_args_is_help=True)
schema_app = typer.Typer(help="The canonical JSON Schemas.", no_args_is_help=True)


def _local_cards() -> dict[str, dict[str, Any]]:
    from reelfoundry.config import Settings
    from reelfoundry.portfolio.registry import Portfolio

    return {k: c.model_dump(mode="json") for k, c in sorted(Portfolio.from_settings(Settings()).cards.items())}


def _summary(card: dict[str, Any]) -> dict[str, Any]:
    hosting = card.get("hosting")
    quality = card.get("quality") or {}
    return {
        **card,
        "hosting": hosting if not isinstance(hosting, dict) else f"{hosting['vendor']} API ({hosting['region']})",
        "size": f"{card['max_width']}×{card['max_height']}",
        "quality": quality.get("score"),
        "$/video-s": card.get("price_usd_per_video_second"),
    }


@models_app.command("list")
@common_options()
def models_list(as_json: AsJson = False) -> None:
    """Models this installation (or --server, or $REELFOUNDRY_SERVER) can run."""
    st = state()
    if st.server:
        cards = st.client().json("GET", "/v1/models", params={"limit": 200})["items"]
    else:
        cards = list(_local_cards().values())
    if as_json:
        print_json(cards)
    else:
        columns = ["id", "backend", "task", "hosting", "size", "quality", "$/video-s"]
        table([_summary(c) for c in cards], columns, "Models")


@models_app.command("show")
@common_options()
def models_show(model_id: str, as_json: AsJson = False) -> None:
    """One model card, in full."""
    st = state()
    if st.server:
        card = st.client().json("GET", f"/v1/models/{quote(model_id, safe='')}")
    else:
        cards = _local_cards()
        if model_id not in cards:
            raise CLIError(f"model {model_id!r} not found; known: {', '.join(cards)}")
        card = cards[model_id]
    show_record(card, as_json, f"Model {model_id}")


@models_app.command("add")
@common_options()
def models_add(
    path: Annotated[
        Path, typer.Argument(help="A models file (YAML: `models: [card, ...]`, as REELFOUNDRY_MODELS_FILE).")
    ],
    as_json: AsJson = False,
) -> None:
    """Add the cards of a models file to the server's portfolio (operator admin key); live at once."""
    from reelfoundry.errors import InvalidParameter
    from reelfoundry.portfolio.config import load_models_file

    try:
        cards = load_models_file(path)
    except InvalidParameter as exc:
        raise CLIError(exc.detail) from None
    added = []
    for card in cards:
        added.append(client().json("POST", "/v1/models", json=card.model_dump(mode="json")))
        if not as_json:
            console.print(f"added {card.id}", highlight=False)
    if as_json:
        print_json(added)


@models_app.command("remove")
@common_options()
def models_remove(model_id: str, as_json: AsJson = False) -> None:
    """Remove a card added with `models add` (queued jobs on it still run)."""
    card = client().json("DELETE", f"/v1/models/{quote(model_id, safe='')}")
    emit(card, as_json, f"removed {model_id}")


@schema_app.command("export")
@friendly
def schema_export(
    directory: Annotated[Path, typer.Argument(help="Where to write <Name>.json files.")], as_json: AsJson = False
) -> None:
    """Write one JSON Schema file per canonical type, and the API's OpenAPI document (openapi.json)."""
    from reelfoundry.api.openapi import write_document
    from reelfoundry.schema import export_all

    try:
        paths = [*export_all(directory), write_document(directory / "openapi.json")]
    except OSError as exc:
        raise CLIError(f"cannot write to {str(directory)!r}: {exc.strerror}") from None
    if as_json:
        print_json([str(p) for p in paths])
    else:
        for p in paths:
            console.print(f"wrote {p}", highlight=False)
