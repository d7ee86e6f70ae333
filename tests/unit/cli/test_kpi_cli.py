"""``reelfoundry kpi --chart``: a path it cannot write is one line and exit code 2, with no partial file left."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from reelfoundry.cli.app import app
from reelfoundry.store import Database

#: The discard port: nothing answers, so the data dir's database is read.
OFFLINE = ["--server", "http://127.0.0.1:9", "--api-key", "unused"]
runner = CliRunner()


def test_a_chart_path_it_cannot_write_is_one_line(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'reelfoundry.db'}")
    db.migrate()
    db.dispose()
    base = ["kpi", *OFFLINE, "--data-dir", str(tmp_path)]
    folder = tmp_path / "charts"
    folder.mkdir()
    for target, says in ((folder, "is a directory"), (Path("/proc/kpi.png"), "cannot write")):
        result = runner.invoke(app, [*base, "--chart", str(target)])
        assert result.exit_code == 2 and says in result.output, result.output
        assert "Traceback" not in result.output and isinstance(result.exception, SystemExit), result.exception
    assert sorted(p.name for p in tmp_path.iterdir()) == ["charts", "reelfoundry.db"]  # no .part left behind
    assert not list(folder.iterdir())

    ok = runner.invoke(app, [*base, "--json", "--chart", str(folder / "kpi.svg")])
    assert ok.exit_code == 0, ok.output
    assert "gpu_utilization" in json.loads(ok.stdout) and (folder / "kpi.svg").read_bytes().startswith(b"<?xml")
