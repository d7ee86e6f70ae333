"""``reelfoundry models list`` and ``reelfoundry schema export``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reelfoundry.cli.client import CLIError
from reelfoundry.cli.common import AsJson, common_options, console, friendly, print_json, state, table

models_app = typer.Typer(help="The model portfolio.", no_args_is_help=True)
schema_app = typer.Typer(help="The canonical JSON Schemas.", no_args_is_help=True)


@models_app.command("list")
@common_options()
def models_list(as_json: AsJson = False) -> None:
    """Models this installation (or --server, or $REELFOUNDRY_SERVER) can run."""
    st = state()
    if st.server:
        cards = st.client().json("GET", "/v1/models", params={"limit": 200})["items"]
    else:
        from reelfoundry.config import Settings
        from reelfoundry.portfolio.registry import Portfolio

        cards = [c.model_dump(mode="json") for c in Portfolio(Settings().extra_models).cards.values()]
    if as_json:
        print_json(cards)
    else:
        table(cards, ["id", "name", "backend", "task", "default_width", "default_height", "default_fps"], "Models")


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
