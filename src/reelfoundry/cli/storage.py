"""``reelfoundry storage lifecycle``: run the storage tiers' lifecycle rule now (the server also runs it on a timer)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from reelfoundry.cli.client import CLIError
from reelfoundry.cli.common import AsJson, common_options, console, print_json, state, table

storage_app = typer.Typer(help="Media storage: tiers and their lifecycle rule.", no_args_is_help=True)


@storage_app.command("lifecycle")
@common_options("data_dir")
def lifecycle(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list the moves due now.")] = False,
    as_json: AsJson = False,
) -> None:
    """Move hot objects unread for storage_cold_after_days to the cold tier, re-pricing their jobs' storage.

    Reads the settings and database of --data-dir (default: the settings', ./reelfoundry-data like `serve`);
    needs REELFOUNDRY_STORAGE_TIERING=true.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from reelfoundry.assets.lifecycle import run_once
    from reelfoundry.assets.stores import make_store
    from reelfoundry.assets.tiered import TieredStore
    from reelfoundry.config import Settings
    from reelfoundry.store import Database

    data_dir = state().data_dir
    settings = Settings() if data_dir is None else Settings(data_dir=data_dir)
    if not settings.storage_tiering:
        raise CLIError("storage tiers are off: set REELFOUNDRY_STORAGE_TIERING=true")
    if settings.database_url is None and not (settings.data_dir / "reelfoundry.db").is_file():
        raise CLIError(f"no database in {str(settings.data_dir)!r}: start `reelfoundry serve` there first")
    db = Database(settings.resolved_database_url)
    try:
        store = make_store(settings, db)
        assert isinstance(store, TieredStore)
        moves, done = run_once(settings, store, dry_run=dry_run)
    except SQLAlchemyError as exc:
        raise CLIError(f"cannot read the storage index: {str(exc).splitlines()[0]}") from None
    finally:
        db.dispose()
    outcome = {m.key: m for m in done}
    rows: list[dict[str, Any]] = []
    for move in moves:
        row: dict[str, Any] = {
            "key": move.key,
            "from": move.source,
            "to": move.target,
            "bytes": move.bytes,
            "unread_days": round(move.idle_days, 2),
        }
        if not dry_run:
            result = outcome.get(move.key)
            row["outcome"] = result.outcome if result else "not run"
            row["detail"] = result.detail if result else ""
            if result and result.storage_usd:
                row["storage_usd_before"], row["storage_usd_after"] = (format(v, "f") for v in result.storage_usd)
        rows.append(row)
    if as_json:
        print_json({"dry_run": dry_run, "cold_after_days": settings.storage_cold_after_days, "moves": rows})
    elif not rows:
        console.print(f"nothing to move (rule: cold after {settings.storage_cold_after_days:g} days unread)")
    else:
        columns = ["key", "from", "to", "bytes", "unread_days"]
        columns += [] if dry_run else ["outcome", "storage_usd_before", "storage_usd_after", "detail"]
        table(rows, columns, "moves due (dry run)" if dry_run else "moves")
    if any(r.get("outcome") == "failed" for r in rows):
        raise typer.Exit(1)
