"""``reelfoundry plan report -o PATH``: a path it cannot write is one line and exit code 2, no partial file."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from reelfoundry.cli.app import app

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "scenarios"
runner = CliRunner()


def test_an_unwritable_output_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    # The report itself is not what is tested here: a stand-in keeps the test fast.
    monkeypatch.setattr("reelfoundry.planning.report.build", lambda scenario, measured: "<html></html>")
    result = runner.invoke(app, ["plan", "report", str(EXAMPLES / "studio.yaml"), "-o", "/proc/report.html"])
    assert result.exit_code == 2 and "cannot write '/proc/report.html'" in result.output, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # not a FileNotFoundError traceback
