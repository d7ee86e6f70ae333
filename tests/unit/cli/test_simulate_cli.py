"""`reelfoundry simulate gen-trace` and `reelfoundry simulate` exactly as the issue writes them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reelfoundry.cli.app import app

FLEETS = sorted((Path(__file__).parents[3] / "examples" / "fleets").glob("*.yaml"))
runner = CliRunner()


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sim") / "t.jsonl"
    r = runner.invoke(app, ["simulate", "gen-trace", "--jobs", "2000", "--seed", "7", "-o", str(path)])
    assert r.exit_code == 0, r.output
    assert len(path.read_text().splitlines()) == 2000
    return path


@pytest.mark.parametrize("fleet", FLEETS, ids=[f.stem for f in FLEETS])
def test_both_policies_report_the_required_figures(trace: Path, fleet: Path) -> None:
    results = {}
    for policy in ("fifo", "reelfoundry"):
        r = runner.invoke(app, ["simulate", "--fleet", str(fleet), "--trace", str(trace), "--policy", policy, "--json"])
        assert r.exit_code == 0, r.output
        report = json.loads(r.stdout)
        for key in ("utilization", "deadline_misses", "cost_per_video_usd", "jobs_completed"):
            assert key in report, key
        assert {"interactive", "batch"} <= set(report["p95_wait_s"])
        assert report["jobs_completed"] == 2000
        results[policy] = report
    # The scheduler's point: interactive work waits far less than under FIFO, and fewer deadlines slip.
    assert results["reelfoundry"]["p95_wait_s"]["interactive"] < results["fifo"]["p95_wait_s"]["interactive"]
    assert results["reelfoundry"]["deadline_misses"] <= results["fifo"]["deadline_misses"]


def test_bad_files_are_one_line_errors_naming_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    good = {"t": 0, "tenant": "a", "model": "builtin", "priority": "interactive", "num_frames": 16}
    good |= {"width": 64, "height": 64, "steps": 20}
    bad.write_text(json.dumps(good) + '\n{"t": 1, "tenant": "a"}\n')
    r = runner.invoke(app, ["simulate", "--fleet", str(FLEETS[0]), "--trace", str(bad)])
    assert r.exit_code == 2
    assert "line 2" in r.output and "'model'" in r.output
    r = runner.invoke(app, ["simulate", "--fleet", str(tmp_path / "nope.yaml"), "--trace", str(bad)])
    assert r.exit_code == 2 and "does not exist" in r.output
    r = runner.invoke(app, ["simulate", "--policy", "random", "--fleet", str(FLEETS[0]), "--trace", str(bad)])
    assert r.exit_code == 2


TRACES = sorted((Path(__file__).parents[3] / "examples" / "traces").glob("*.jsonl"))


@pytest.mark.parametrize("fleet", FLEETS, ids=[f.stem for f in FLEETS])
@pytest.mark.parametrize("shipped", TRACES, ids=[t.stem for t in TRACES])
def test_shipped_traces_run_on_shipped_fleets(shipped: Path, fleet: Path) -> None:
    reports = {}
    for policy in ("fifo", "reelfoundry"):
        r = runner.invoke(
            app, ["simulate", "--fleet", str(fleet), "--trace", str(shipped), "--policy", policy, "--json"]
        )
        assert r.exit_code == 0, r.output
        reports[policy] = json.loads(r.stdout)
    assert reports["fifo"]["jobs_completed"] == reports["reelfoundry"]["jobs_completed"] == 400
    assert reports["reelfoundry"]["deadline_misses"] <= reports["fifo"]["deadline_misses"]
