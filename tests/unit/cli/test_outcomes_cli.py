"""``reelfoundry outcomes``: bad input is one line and exit code 2 before any request; ``summary`` sums a data
dir's outcomes when no server answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reelfoundry.cli.app import app
from reelfoundry.schema.outcome import OutcomeCreate
from reelfoundry.store import Database
from reelfoundry.store import keys as keystore
from reelfoundry.store import outcomes as outcomestore

#: The discard port: nothing answers.
OFFLINE = ["--server", "http://127.0.0.1:9", "--api-key", "unused"]
runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--views", "3"], "--asset, its --campaign or both"),
        (["--campaign", "c", "--revenue-usd", "ten"], "--revenue-usd must be a number"),
        (["--campaign", "c", "--views", "-1"], "-1"),
        (["--asset", "not-an-id"], "not a valid asset id"),
        (["--campaign", "c", "--to", "someday"], "to must be a date"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], says: str) -> None:
    result = runner.invoke(app, ["outcomes", "add", *args, *OFFLINE])
    assert result.exit_code == 2, result.output
    assert says in result.output and "Traceback" not in result.output


def test_summary_reads_the_data_dir_when_no_server_answers(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'reelfoundry.db'}")
    db.migrate()
    with db.write() as session:
        a = keystore.get_or_create_tenant(session, "a")
        b = keystore.get_or_create_tenant(session, "b")
        march, april = datetime(2026, 3, 9, tzinfo=UTC), datetime(2026, 4, 9, tzinfo=UTC)
        for tenant, campaign, views, end in ((a, "x", 10, march), (b, "x", 5, march), (a, "y", 7, april)):
            body = OutcomeCreate(campaign=campaign, views=views, spend_usd="1.25", period_end=end)
            outcomestore.create(session, tenant.id, body, campaign=campaign, actor=None)
    db.dispose()
    args = ["outcomes", "summary", "--json", "--from", "2026-03-01", "--to", "2026-03-31", *OFFLINE]
    result = runner.invoke(app, [*args, "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    # Every tenant's March outcomes (whoever reads the file is the operator): 10 + 5 views, 2 × $1.25.
    assert data["totals"] == {
        "records": 2,
        "views": 15,
        "clicks": 0,
        "conversions": 0,
        "revenue_usd": "0.0000",
        "spend_usd": "2.5000",
    }
    assert [row["campaign"] for row in data["by_campaign"]] == ["x"]
    # As the server answers (a 422 naming to): an empty window is an error, not zeros.
    backwards = runner.invoke(
        app, [*args[:4], "2026-03-31", "--to", "2026-03-01", *OFFLINE, "--data-dir", str(tmp_path)]
    )
    assert backwards.exit_code == 2 and "--to must be after --from" in backwards.output, backwards.output
    missing = runner.invoke(app, ["outcomes", "summary", *OFFLINE, "--data-dir", str(tmp_path / "none")])
    assert missing.exit_code == 1 and "no server" in missing.output
