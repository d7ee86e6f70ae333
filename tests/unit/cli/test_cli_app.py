"""The CLI without a server: version, completion, choices, the common options and generate's data dir."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reelfoundry import __version__
from reelfoundry.cli import common
from reelfoundry.cli.app import app
from reelfoundry.cli.common import DEFAULT_DIR, DEFAULT_SERVER, CLIState, PriceKind
from reelfoundry.cli.generate import user_data_dir
from reelfoundry.finops.catalog import Catalog

runner = CliRunner()


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No REELFOUNDRY_* settings from the caller; HOME and XDG_DATA_HOME in a temporary folder."""
    for name in ("REELFOUNDRY_SERVER", "REELFOUNDRY_DATA_DIR", "REELFOUNDRY_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    return tmp_path


def test_version_option_and_command() -> None:
    for args in (["--version"], ["version"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0 and result.stdout.strip() == __version__


def test_help_offers_completion_and_every_group() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for word in ("--install-completion", "--show-completion", "budgets", "webhooks", "submit", "generate"):
        assert word in result.stdout


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["jobs", "list", "--state", "done"], "--state"),
        (["keys", "create", "--name", "x", "--role", "boss"], "--role"),
        (["prices", "--kind", "gold"], "--kind"),
        (["serve", "--log-level", "loud"], "--log-level"),
        (["assets", "list", "--state", "maybe"], "--state"),
        (["review", "list", "--state", "maybe"], "--state"),
        (["budgets", "create", "--name", "b", "--limit-usd", "5", "--scope", "planet"], "--scope"),
        (["budgets", "create", "--name", "b", "--limit-usd", "5", "--enforcement", "strict"], "--enforcement"),
    ],
)
def test_bad_choices_are_refused_with_exit_2(args: list[str], option: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "Invalid value" in result.output and option in result.output


def test_price_kinds_match_the_catalog() -> None:
    assert [k.value for k in PriceKind] == list(Catalog.SECTIONS)


def test_prices_json_is_only_json() -> None:
    result = runner.invoke(app, ["prices", "--kind", "gpu", "--json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["rows"] and {row["kind"] for row in data["rows"]} == {"gpu"}


def test_models_list_json_without_a_server() -> None:
    result = runner.invoke(app, ["models", "list", "--json"])
    assert result.exit_code == 0
    assert "template" in {m["id"] for m in json.loads(result.stdout)}


def test_state_precedence_and_one_client(monkeypatch: pytest.MonkeyPatch) -> None:
    st = CLIState()
    assert (st.server_url, st.server_data_dir) == (DEFAULT_SERVER, DEFAULT_DIR)
    st = CLIState(server="http://root:1", data_dir=Path("root"), api_key="rootkey")
    st.override(None, None, None)
    assert (st.server, st.data_dir, st.api_key) == ("http://root:1", Path("root"), "rootkey")
    made: list[tuple[str, str]] = []

    class FakeClient:
        def __init__(self, server: str, key: str) -> None:
            made.append((server, key))

    monkeypatch.setattr(common, "Client", FakeClient)
    first = st.client()
    assert st.client() is first and made == [("http://root:1", "rootkey")]
    st.override("http://cmd:2", None, "cmdkey")  # the per-command option wins; a new client follows
    assert st.client() is not first and made[-1] == ("http://cmd:2", "cmdkey")


def test_per_command_options_win_over_root_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, str]] = []

    class FakeClient:
        def __init__(self, server: str, key: str) -> None:
            seen.append((server, key))

        def json(self, method: str, path: str, **kw: object) -> object:
            return {"items": [{"id": "k", "name": "n", "role": "viewer"}]}

    monkeypatch.setattr(common, "Client", FakeClient)
    args = ["--server", "http://root:1", "--api-key", "a", "keys", "list", "--json", "--api-key", "b"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["id"] == "k" and seen == [("http://root:1", "b")]
    monkeypatch.setenv("REELFOUNDRY_SERVER", "http://env:3")
    assert runner.invoke(app, ["keys", "list", "--json", "--api-key", "c"]).exit_code == 0
    assert seen[-1] == ("http://env:3", "c")


def test_missing_key_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["jobs", "list", "--data-dir", str(tmp_path / "none")])
    assert result.exit_code == 2 and "no API key" in result.output and "Traceback" not in result.output


def test_generate_defaults_to_the_user_data_dir(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert user_data_dir() == clean_env / "xdg" / "reelfoundry"
    monkeypatch.chdir(clean_env)
    args = ["generate", "hi", "--model", "template", "--frames", "2", "--size", "64x64", "-o", "o.mp4", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["num_frames"] == 2
    assert (clean_env / "xdg" / "reelfoundry").is_dir() and not (clean_env / "reelfoundry-data").exists()
    assert str(clean_env / "xdg" / "reelfoundry") in result.stderr
    monkeypatch.setenv("REELFOUNDRY_DATA_DIR", str(clean_env / "env-dir"))
    assert runner.invoke(app, args).exit_code == 0
    assert (clean_env / "env-dir").is_dir()
