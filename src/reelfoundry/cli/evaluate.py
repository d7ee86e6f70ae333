"""``reelfoundry eval model``: the NRES suite on any model of the portfolio (registered on ``eval`` in train.py).

It runs on this machine, through the model's own backend, as a worker would run it; ``--record`` stores the
result in the database of --data-dir, where every server's portfolio picks it up as the card's evaluation and
quality within a second.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from reelfoundry.cli.client import CLIError
from reelfoundry.cli.common import AsJson, common_options, console, print_json, state

if TYPE_CHECKING:
    from reelfoundry.config import Settings
    from reelfoundry.evaluation.nres import NresResult, Reference
    from reelfoundry.portfolio.registry import Portfolio
    from reelfoundry.schema import ModelCard
    from reelfoundry.store import Database


class Suite(StrEnum):
    """The NRES suites."""

    quick = "quick"
    standard = "standard"


def local_settings() -> Settings:
    """The settings, with --data-dir when given."""
    from reelfoundry.config import Settings

    data_dir = state().data_dir
    return Settings() if data_dir is None else Settings(data_dir=data_dir)


def has_database(settings: Settings) -> bool:
    """Whether the settings name a database that exists (a URL, or the data dir's SQLite file)."""
    return settings.database_url is not None or (settings.data_dir / "reelfoundry.db").is_file()


@contextlib.contextmanager
def open_database(settings: Settings, why: str) -> Iterator[Database]:
    """The platform's database (as the server migrated it: a CLI changes no schema); CLIError saying ``why`` it
    is needed when there is none."""
    from sqlalchemy.exc import SQLAlchemyError

    from reelfoundry.store import Database

    if not has_database(settings):
        raise CLIError(f"{why} needs the platform's database: none in {str(settings.data_dir)!r} (give --data-dir)")
    db = Database(settings.resolved_database_url)
    try:
        yield db
    except SQLAlchemyError as exc:
        raise CLIError(f"cannot use the database: {str(exc).splitlines()[0]}") from None
    finally:
        db.dispose()


def local_portfolio(settings: Settings) -> Portfolio:
    """The models file's and built-in cards, plus the cards added over the API when a database exists."""
    from reelfoundry.portfolio.registry import Portfolio

    portfolio = Portfolio.from_settings(settings)
    if has_database(settings):
        with open_database(settings, "reading the added cards") as db:
            portfolio.refresh(db, force=True)
    return portfolio


def collection_reference(settings: Settings, collection: str, scratch: Path) -> Reference:
    """The videos of a DAM collection, copied from the object store, as an evaluation reference."""
    from reelfoundry.assets.stores import make_store
    from reelfoundry.evaluation.nres import video_reference
    from reelfoundry.store import models as modelstore

    with open_database(settings, "--reference") as db:
        with db.read() as session:
            try:
                name, keys = modelstore.collection_video_keys(session, collection)
            except LookupError as exc:
                raise CLIError(str(exc)) from None
        store = make_store(settings, db)
        paths = []
        with contextlib.ExitStack() as stack:
            for key in keys:
                with contextlib.suppress(FileNotFoundError):
                    paths.append(stack.enter_context(store.local_copy(key, scratch)))
            return video_reference(f"collection {name}", paths)


def record_result(settings: Settings, result: NresResult) -> str:
    """Store an NRES result in the database (the card's evaluation from then on) and audit it; its id."""
    from reelfoundry.store import audit
    from reelfoundry.store import models as modelstore

    with open_database(settings, "--record") as db, db.write() as session:
        evaluation_id = modelstore.add_evaluation(
            session, result.model, result.suite, result.suite_version, result.to_json()
        )
        audit.append(
            session,
            "model.evaluated",
            actor="cli",
            subject=result.model,
            data={
                "evaluation": evaluation_id,
                "suite": result.suite,
                "suite_version": result.suite_version,
                "fidelity": result.fidelity,
                "nres": result.nres,
            },
        )
    return evaluation_id


def find_card(portfolio: Portfolio, model_id: str) -> ModelCard:
    """A card of the portfolio by id; CLIError naming the known ones."""
    cards = portfolio.cards
    if model_id not in cards:
        raise CLIError(f"model {model_id[:128]!r} not found; known: {', '.join(sorted(cards))}")
    return cards[model_id]


@common_options("data_dir")
def eval_model(
    model_id: Annotated[str, typer.Argument(help="The model's id (`reelfoundry models list`).")],
    suite: Annotated[Suite, typer.Option("--suite", help="quick (under a minute on a CPU) or standard (minutes).")] = (
        Suite.quick
    ),
    reference: Annotated[
        str | None,
        typer.Option("--reference", help="A DAM collection (id or name) to compare with, not the procedural set."),
    ] = None,
    features: Annotated[
        Path | None,
        typer.Option("--features", help="A local I3D TorchScript file or VideoMAE directory for the distance."),
    ] = None,
    record: Annotated[
        bool, typer.Option("--record", help="Store the result: the card's evaluation and quality from then on.")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Run the NRES suite on a model: fidelity, time, memory, cost and the NRES score."""
    from reelfoundry.evaluation.nres import SUITES, evaluate_model

    settings = local_settings()
    if record and not has_database(settings):
        raise CLIError(f"--record needs the platform's database: none in {str(settings.data_dir)!r} (give --data-dir)")
    card = find_card(local_portfolio(settings), model_id)
    console.print(
        f"NRES {suite.value} suite ({SUITES[suite.value].prompts} clips) on {card.id}, on this machine",
        highlight=False,
    )
    with tempfile.TemporaryDirectory(prefix="nres-ref-") as scratch:
        ref = collection_reference(settings, reference, Path(scratch)) if reference else None
        result = evaluate_model(card, settings, suite.value, reference=ref, features=features).result
    if record:
        evaluation_id = record_result(settings, result)
        console.print(f"recorded as evaluation {evaluation_id}", highlight=False)
    if as_json:
        print_json(result.to_json())
        return
    console.print(
        f"fidelity {result.fidelity:.3f} (FD {result.frechet_distance}, {result.feature_extractor}); "
        f"temporal consistency {result.temporal_consistency}, flicker {result.flicker}; "
        f"{result.seconds_per_clip} s/clip warm, {result.cold_seconds_per_clip} s cold; "
        f"peak memory {result.peak_memory_mb:.0f} MB ({result.peak_memory_method}); "
        f"${result.cost_per_clip_usd}/clip; NRES {result.nres:.3f} ({result.suite_version})",
        highlight=False,
    )
    for error in result.errors:
        console.print(f"[yellow]{error}[/yellow]", highlight=False)
