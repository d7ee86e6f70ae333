"""``reelfoundry audit verify``: the hash-chained audit log."""

from __future__ import annotations

import typer

from reelfoundry.cli.client import CLIError
from reelfoundry.cli.common import AsJson, common_options, console, print_json, state

audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)


@audit_app.command("verify")
@common_options("data_dir")
def audit_verify(as_json: AsJson = False) -> None:
    """Check that no audit-log entry was edited, inserted or deleted. Exit code 1 when one was.

    Reads the database of --data-dir (default: the settings', ./reelfoundry-data like `serve`).
    """
    from sqlalchemy.exc import SQLAlchemyError

    from reelfoundry.config import Settings
    from reelfoundry.store import Database, audit

    data_dir = state().data_dir
    settings = Settings() if data_dir is None else Settings(data_dir=data_dir)
    if settings.database_url is None and not (settings.data_dir / "reelfoundry.db").is_file():
        raise CLIError(f"no database in {str(settings.data_dir)!r}: start `reelfoundry serve` there first")
    db = Database(settings.resolved_database_url)
    try:
        audit.Sealer(db, 1.0).seal_now()  # entries written but not yet chained: chain them, then check all
        with db.read() as session:
            check = audit.verify(session)
    except SQLAlchemyError as exc:
        raise CLIError(f"cannot read the audit log: {str(exc).splitlines()[0]}") from None
    finally:
        db.dispose()
    if as_json:
        print_json(
            {
                "ok": check.ok,
                "entries": check.entries,
                "head": check.head,
                "pending": check.pending,
                "problems": check.problems,
            }
        )
    elif check.ok:
        console.print(f"[green]intact[/green]: {check.entries} entries, head {check.head}", highlight=False)
    else:
        for problem in check.problems:
            console.print(f"[red]{problem}[/red]", highlight=False)
    if not check.ok:
        raise typer.Exit(1)
