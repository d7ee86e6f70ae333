"""``reelfoundry models list|show|add|remove|onboard|approve|lifecycle`` and ``reelfoundry schema export``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
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
from reelfoundry.cli.evaluate import Suite, has_database, local_settings, open_database

if TYPE_CHECKING:
    from reelfoundry.schema import ModelCard

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
        "status": card.get("status") or "approved",  # models-file and built-in cards are approved by definition
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
        columns = ["id", "status", "backend", "task", "hosting", "size", "quality", "$/video-s"]
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


@models_app.command("approve")
@common_options()
def models_approve(model_id: str, as_json: AsJson = False) -> None:
    """Approve a candidate whose onboarding report passed (operator admin key): routable at once."""
    card = client().json("POST", f"/v1/models/{quote(model_id, safe='')}/approve")
    emit(card, as_json, f"approved {model_id}")


@models_app.command("lifecycle")
@common_options()
def models_lifecycle(model_id: str, as_json: AsJson = False) -> None:
    """Registered → approved → first production job of a card added over the API (model agility)."""
    facts = client().json("GET", f"/v1/models/{quote(model_id, safe='')}/lifecycle")
    show_record(facts, as_json, f"Lifecycle of {model_id}")


#: A models file (``models: [...]``, in block or flow style) rather than one card.
_MODELS_FILE = re.compile(r"""^\{?\s*["']?models["']?\s*:""", re.MULTILINE)


def _read_card(path: Path) -> ModelCard:
    """The one card of a YAML file: a card, or a models file (``models: [card]``) holding exactly one."""
    from reelfoundry.errors import InvalidParameter
    from reelfoundry.portfolio.config import MAX_MODELS_FILE_BYTES, parse_models

    try:
        if path.stat().st_size > MAX_MODELS_FILE_BYTES:
            raise CLIError(f"{path}: larger than {MAX_MODELS_FILE_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CLIError(f"cannot read {path}: {exc}") from None
    if not _MODELS_FILE.search(text):
        text = "models:\n" + "".join(f"  {line}\n" if i else f"- {line}\n" for i, line in enumerate(text.splitlines()))
    try:
        cards = parse_models(text, str(path))
    except InvalidParameter as exc:
        raise CLIError(exc.detail) from None
    if len(cards) != 1:
        raise CLIError(f"{path}: onboarding takes one card at a time, the file has {len(cards)}")
    card = cards[0]
    for name in ("status", "evaluation"):
        if getattr(card, name) is not None:
            raise CLIError(f"{path}: {name} is set by the platform, not given in a card")
    return card


@models_app.command("onboard")
@common_options("data_dir")
def models_onboard(
    path: Annotated[Path, typer.Argument(help="The card (YAML), as given to `models add`.")],
    report: Annotated[
        Path | None, typer.Option("--report", help="Write the report here as HTML, and as JSON beside it.")
    ] = None,
    suite: Annotated[Suite | None, typer.Option("--suite", help="Default: REELFOUNDRY_ONBOARDING_SUITE.")] = None,
    features: Annotated[
        Path | None, typer.Option("--features", help="A local I3D TorchScript file or VideoMAE directory.")
    ] = None,
    approve: Annotated[
        bool, typer.Option("--approve/--no-approve", help="Approve the registered candidate when every check passes.")
    ] = True,
    as_json: AsJson = False,
) -> None:
    """Run the onboarding checks on this machine; record the report and approve the candidate when all pass.

    Exit code 1 when a check fails. The report is recorded (and the card, added with `models add`, approved)
    in the database of --data-dir when there is one.
    """
    from reelfoundry.evaluation.onboarding import onboard

    card = _read_card(path)
    settings = local_settings()
    if report is not None and not report.parent.is_dir():
        raise CLIError(f"--report: no directory {str(report.parent)!r}")
    console.print(f"onboarding {card.id}: security, canonical format, NRES suite", highlight=False)
    result = onboard(card, settings, suite=suite.value if suite else None, features=features)
    written: list[str] = []
    if report is not None:
        from reelfoundry.evaluation.report import write_reports

        written = [str(p) for p in write_reports(result, report)]
    outcome = _record_onboarding(settings, card, result.to_json(), approve) if has_database(settings) else None
    if as_json:
        print_json({**result.to_json(), "recorded": outcome, "files": written})
    else:
        for check in result.checks:
            mark = "[green]pass[/green]" if check.passed else "[red]FAIL[/red]"
            console.print(f"{mark} {check.group}/{check.name}: {check.detail}", highlight=False)
        verdict = "[green]passed[/green]" if result.passed else "[red]refused[/red]"
        console.print(f"{card.id}: {verdict}", highlight=False)
        if outcome is not None:
            console.print(f"status: {outcome['status']} ({outcome['why']})", highlight=False)
        else:
            console.print(f"no database in {str(settings.data_dir)!r}: the report is not recorded", highlight=False)
        for file in written:
            console.print(f"wrote {file}", highlight=False)
    if not result.passed:
        raise typer.Exit(1)


def _record_onboarding(settings: Any, card: ModelCard, report: dict[str, Any], approve: bool) -> dict[str, Any]:
    """Store the report and audit it; approve the stored candidate when it passed and is this very card."""
    from reelfoundry.schema import ModelCard
    from reelfoundry.store import audit
    from reelfoundry.store import models as modelstore

    with open_database(settings, "recording the report") as db, db.write() as session:
        report_id = modelstore.add_evaluation(session, card.id, modelstore.ONBOARDING, report["suite_version"], report)
        failed = [c["name"] for c in report["checks"] if not c["passed"]]
        audit.append(
            session,
            "model.onboarded",
            actor="cli",
            subject=card.id,
            data={"report": report_id, "passed": report["passed"], "failed": failed, "card": report["card_sha256"]},
        )
        row = modelstore.get_card_row(session, card.id)
        if row is None:
            status, why = None, "not registered here: `models add` it, then approve (POST /v1/models/{id}/approve)"
        elif row.status == modelstore.APPROVED:
            status, why = row.status, "already approved"
        elif not report["passed"]:
            status, why = row.status, "a check failed"
        elif modelstore.card_digest(ModelCard.model_validate(row.card)) != report["card_sha256"]:
            status, why = row.status, "the registered card differs from this one: not approved"
        elif not approve:
            status, why = row.status, "--no-approve"
        else:
            approved = modelstore.approve(session, card.id)
            assert approved is not None
            audit.append(session, "model.approved", actor="cli", subject=card.id, data={"report": report_id})
            status, why = approved.status, f"onboarding report {report_id} passed"
    return {"report_id": report_id, "status": status, "why": why}


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
