"""The ``reelfoundry`` command as a user runs it: exit codes, one-line errors, files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import av
import httpx
import numpy as np
import pytest
from server import Server

from reelfoundry.models.builtin import export
from reelfoundry.schema import EXPORTED


@pytest.fixture(autouse=True)
def user_data_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh HOME and XDG_DATA_HOME per test: `generate` keeps its data dir there, never in the real home."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "xdg"))
    monkeypatch.delenv("REELFOUNDRY_DATA_DIR", raising=False)
    return home / "xdg"


def rf(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reelfoundry", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_generate_the_readme_command(tmp_path: Path, user_data_home: Path) -> None:
    r = rf("generate", "Hello from ReelFoundry", "--model", "template", "-o", "out.mp4", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    data_dir = user_data_home / "reelfoundry"
    assert str(data_dir) in r.stderr, r.stderr  # says where
    with av.open(str(tmp_path / "out.mp4")) as c:
        stream = c.streams.video[0]
        assert (stream.width, stream.height, stream.codec_context.name) == (640, 360, "h264")
        assert sum(1 for _ in c.decode(stream)) == 120
    # The development signing credentials live in the user's data dir (not the current folder); verify trusts them.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]
    assert data_dir.is_dir() and any(data_dir.iterdir())
    v = rf("verify", "out.mp4", "--json", cwd=tmp_path)
    assert v.returncode == 0, v.stderr
    report = json.loads(v.stdout)
    assert report["valid"] and report["validation_state"] == "Trusted"
    assert report["actions"][0]["digitalSourceType"].endswith("/algorithmicMedia")  # a template render


def test_generate_uses_the_builtin_model_and_follows_the_prompt(tmp_path: Path) -> None:
    """The issue's command, exactly: no --model picks the shipped built-in model (a held-out combination)."""
    r = rf("generate", "a red circle moving left on a blue background", "-o", "out.mp4", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["model"] == "builtin"
    with av.open(str(tmp_path / "out.mp4")) as c:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)]).astype(int)
    assert frames.shape == (16, 64, 64, 3)
    red = (frames[..., 0] > 140) & (frames[..., 1] < 110) & (frames[..., 2] < 110)
    blue = (frames[..., 2] > 140) & (frames[..., 0] < 110)
    assert blue.mean() > 0.5, "the background should be blue"
    assert red[0].sum() > 20 and red[-1].sum() > 20, "a red object should be visible at the start and the end"
    xs = [np.nonzero(m)[1].mean() for m in red]
    assert xs[-1] < xs[0] - 8, f"the red object should move left; centroid x per frame {np.round(xs, 1)}"


def test_eval_builtin_json_keys(tmp_path: Path) -> None:
    """The protocol end to end on a tiny random-weight pipeline (the shipped one is slower)."""
    from reelfoundry.models.pipeline_builtin import new_pipeline

    weights = export(new_pipeline(hidden_dim=32, depth=1, heads=2, patch_t=4, patch_size=16), tmp_path / "w", {})
    r = rf("eval", "builtin", "--json", "--limit", "4", "--steps", "2", "--weights", str(weights), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    for name in ("colour", "shape", "motion"):
        assert 0 <= report["adherence"][name] <= 1
    assert report["probe_accuracy"] >= 0.97 and report["fvd"] >= 0 and report["seconds_per_clip"] > 0


def test_generate_options_and_template(tmp_path: Path) -> None:
    example = Path(__file__).parents[2] / "examples" / "welcome.json"
    r = rf(
        "generate",
        "x",
        "--template",
        str(example),
        "--size",
        "320x180",
        "--fps",
        "12",
        "--json",
        "-o",
        "w.mp4",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert (info["width"], info["height"], info["num_frames"], info["fps"]) == (320, 180, 60, 12.0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--size", "12x"], "--size must look like"),
        (["--size", "641x360"], "width"),
        (["--frames", "0"], "num_frames"),
        (["--frames", "5000"], "num_frames"),
        (["--model", "nope"], "unknown model"),
        (["-o", "missing-dir/out.mp4"], "does not exist"),
        (["-o", "out.gif"], ".mp4"),
        (["--template", "nope.json"], "cannot read template"),
        (["--template", "bad.json"], "scenes"),
    ],
)
def test_generate_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "bad.json").write_text('{"scenes": []}')
    if "-o" not in args:
        args = [*args, "-o", "out.mp4"]
    r = rf("generate", "x", *args, cwd=tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json"]


def test_schema_export_and_help(tmp_path: Path) -> None:
    r = rf("schema", "export", str(tmp_path / "s"), "--json")
    assert r.returncode == 0 and len(json.loads(r.stdout)) == len(EXPORTED) + 1  # and openapi.json
    assert (tmp_path / "s" / "VideoRequest.json").exists()
    committed = Path(__file__).parents[2] / "schemas" / "openapi.json"
    assert (tmp_path / "s" / "openapi.json").read_text() == committed.read_text()
    assert rf("--help").returncode == 0


def test_server_commands(server: Server, tmp_path: Path) -> None:
    common = ["--server", server.url, "--api-key", server.admin_key]
    r = rf(
        "submit",
        "Via the CLI",
        "--model",
        "template",
        "--frames",
        "12",
        "--wait",
        "-o",
        str(tmp_path / "s.mp4"),
        "--project",
        "demo",
        *common,
    )
    assert r.returncode == 0, r.stderr
    assert "succeeded" in r.stderr and (tmp_path / "s.mp4").stat().st_size > 0
    jobs = json.loads(rf("jobs", "list", "--json", *common).stdout)
    job = next(j for j in jobs if j["request"]["prompt"] == "Via the CLI")
    assert json.loads(rf("jobs", "show", job["id"], "--json", *common).stdout)["state"] == "succeeded"
    r = rf("jobs", "show", job["id"], *common)  # a table for people, and the route under it
    assert r.returncode == 0 and job["id"] in r.stdout and "succeeded" in r.stdout
    assert "Route (explicit): the request names template" in r.stdout
    assets = json.loads(rf("assets", "list", "--project", "demo", "--json", *common).stdout)
    assert [a["id"] for a in assets] == [job["asset_id"]]
    r = rf("assets", "download", job["asset_id"], "-o", str(tmp_path / "d.mp4"), *common)
    assert r.returncode == 0 and (tmp_path / "d.mp4").read_bytes() == (tmp_path / "s.mp4").read_bytes()
    key = json.loads(rf("keys", "create", "--name", "cli", "--role", "viewer", "--json", *common).stdout)
    assert key["secret"].startswith("rf_")
    assert any(k["id"] == key["id"] for k in json.loads(rf("keys", "list", "--json", *common).stdout))
    assert rf("keys", "revoke", key["id"], *common).returncode == 0
    models = json.loads(rf("models", "list", "--json", *common).stdout)
    assert {"template", "faulty"} <= {m["id"] for m in models}
    card = json.loads(rf("models", "show", "template", "--json", *common).stdout)
    (tmp_path / "models.yaml").write_text(json.dumps({"models": [{**card, "id": "promo-cli"}]}))
    r = rf("models", "add", str(tmp_path / "models.yaml"), *common)
    assert r.returncode == 0 and "added promo-cli" in r.stderr, r.stderr
    routed = json.loads(rf("submit", "cheap please", "--objective", "cost", "--frames", "6", "--json", *common).stdout)
    assert routed["route"]["objective"] == "cost" and routed["model"] in routed["route"]["reason"]
    assert rf("models", "remove", "promo-cli", *common).returncode == 0
    (tmp_path / "bad.yaml").write_text("models:\n  - id: x\n    name: X\n")
    r = rf("models", "add", str(tmp_path / "bad.yaml"), *common)
    assert r.returncode == 2 and "line 2" in r.stderr and "backend" in r.stderr and "Traceback" not in r.stderr
    queued = json.loads(rf("submit", "slow:3", "--model", "faulty", "--json", *common).stdout)
    assert rf("jobs", "cancel", queued["id"], *common).returncode == 0


def test_review_commands(server: Server) -> None:
    common = ["--server", server.url, "--api-key", server.admin_key]
    job = json.loads(
        rf("submit", "For review", "--model", "template", "--frames", "6", "--wait", "--json", *common).stdout
    )
    asset_id = job["asset_id"]
    pending = json.loads(rf("review", "list", "--json", *common).stdout)
    assert asset_id in {a["id"] for a in pending} and {a["review_state"] for a in pending} == {"pending_review"}
    r = rf("assets", "publish", asset_id, *common)
    assert r.returncode == 2 and "pending_review" in r.stderr and "Traceback" not in r.stderr
    r = rf("review", "approve", asset_id, *common)  # the admin key submitted it
    assert r.returncode == 2 and "may not approve" in r.stderr
    reviewer = json.loads(rf("keys", "create", "--name", "rev", "--role", "reviewer", "--json", *common).stdout)
    as_reviewer = ["--server", server.url, "--api-key", reviewer["secret"]]
    r = rf("review", "approve", asset_id, "-m", "fine", *as_reviewer)
    assert r.returncode == 0 and f"asset {asset_id} approved" in r.stderr, r.stderr
    pub = json.loads(rf("assets", "publish", asset_id, "--json", *common).stdout)
    assert httpx.get(pub["url"]).status_code == 200
    r = rf("tenant", "set", "--allow-self-approval", "--json", *common)
    assert json.loads(r.stdout)["allow_self_approval"] is True
    r = rf("tenant", "set", "--no-self-approval", "--json", *common)
    assert json.loads(r.stdout)["allow_self_approval"] is False
    assert rf("tenant", "set", *common).returncode == 2
    for bad in ("../keys", "x" * 26):
        r = rf("review", "reject", bad, *common)
        assert r.returncode == 2 and "not a valid asset id" in r.stderr, r.stderr


def test_usage_and_prices_commands(server: Server, tmp_path: Path) -> None:
    common = ["--server", server.url, "--api-key", server.admin_key]
    rf("submit", "Costed", "--model", "template", "--frames", "6", "--wait", *common)
    r = rf("usage", "--by", "model", "--json", *common)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert isinstance(rows, list) and rows
    for row in rows:
        assert {"model", "jobs", "total_usd", "energy_kwh", "co2e_kg", "cost_per_video_usd"} <= row.keys()
    template = next(row for row in rows if row["model"] == "template")
    assert template["jobs"] >= 1 and float(template["total_usd"]) > 0
    chart = tmp_path / "spend.png"
    r = rf("usage", "--by", "model", "--chart", str(chart), *common)
    assert r.returncode == 0 and chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", r.stderr
    csv = rf("usage", "--by", "model,day", "--csv", *common).stdout
    assert csv.splitlines()[0].startswith("model,day,jobs,")
    # No server there: the data dir's database is read directly.
    r = rf("usage", "--by", "model", "--json", "--server", "http://127.0.0.1:9", "--data-dir", str(server.data_dir))
    assert r.returncode == 0 and {row["model"] for row in json.loads(r.stdout)} >= {"template"}, r.stderr
    for bad in (["--by", "colour"], ["--from", "someday"], ["--chart", str(tmp_path / "no" / "x.png")]):
        r = rf("usage", *bad, *common)
        assert r.returncode == 2 and "Traceback" not in r.stderr, (bad, r.stderr)
    r = rf("prices", "--kind", "gpu", "--json")
    assert r.returncode == 0 and all(row["source"] and row["as_of"] for row in json.loads(r.stdout)["rows"])


def test_server_errors_are_one_line(server: Server) -> None:
    common = ["--server", server.url, "--api-key", server.admin_key]
    r = rf("jobs", "show", "01ARZ3NDEKTSV4RRFFQ69G5FAV", *common)
    assert r.returncode == 2 and "not found" in r.stderr and "Traceback" not in r.stderr
    r = rf("jobs", "list", "--server", server.url, "--api-key", "rf_bad")
    assert r.returncode == 2 and "API key" in r.stderr
    r = rf("jobs", "list", "--server", "http://127.0.0.1:9", "--api-key", "x")
    assert r.returncode == 1 and "cannot reach" in r.stderr


def test_train_builtin_two_step_smoke(tmp_path: Path) -> None:
    """The real command at full model size, two tiny steps: checkpoint, log, loss curve and an exported card."""
    r = rf("train", "builtin", "--steps", "2", "--batch-size", "2", "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    run = tmp_path / "run"
    assert (run / "checkpoint.pt").exists() and (run / "loss.png").exists() and (run / "train_log.jsonl").exists()
    card = json.loads((run / "export" / "card.json").read_text())
    assert card["steps"] == 2 and "transformer/diffusion_pytorch_model.safetensors" in card["sha256"]


def test_generate_data_dir_overrides(tmp_path: Path, user_data_home: Path) -> None:
    """--data-dir (root or per command) and $REELFOUNDRY_DATA_DIR beat the user data dir."""
    args = ["generate", "x", "--model", "template", "--frames", "4", "--size", "64x64", "-o", "o.mp4"]
    r = rf(*args, "--data-dir", "mine", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "mine").is_dir() and not (user_data_home / "reelfoundry").exists()
    r = rf("--data-dir", "root", *args, cwd=tmp_path)
    assert r.returncode == 0 and (tmp_path / "root").is_dir(), r.stderr
    v = rf("verify", "o.mp4", "--json", "--data-dir", "root", cwd=tmp_path)
    assert json.loads(v.stdout)["validation_state"] == "Trusted", v.stderr


def test_version_and_completion() -> None:
    from reelfoundry import __version__

    r = rf("--version")
    assert r.returncode == 0 and r.stdout.strip() == __version__
    help_text = rf("--help").stdout
    assert "--install-completion" in help_text and "--show-completion" in help_text


@pytest.mark.parametrize(
    "args",
    [
        ["jobs", "list", "--state", "done"],
        ["keys", "create", "--name", "x", "--role", "boss"],
        ["prices", "--kind", "gold"],
        ["serve", "--log-level", "loud"],
        ["assets", "list", "--state", "maybe"],
        ["review", "list", "--state", "maybe"],
        ["budgets", "create", "--name", "b", "--limit-usd", "5", "--period", "year"],
    ],
)
def test_bad_choices_exit_2_before_any_work(args: list[str]) -> None:
    local = args[0] in ("prices", "serve")  # no server options: nothing to reach
    r = rf(*args) if local else rf(*args, "--server", "http://127.0.0.1:9", "--api-key", "x")
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Invalid value" in r.stderr and "Traceback" not in r.stderr and "cannot reach" not in r.stderr


def test_json_everywhere_and_root_options(server: Server, tmp_path: Path) -> None:
    """--json on every data command prints only JSON; the common options also work before the command."""
    common = ["--server", server.url, "--api-key", server.admin_key]

    def js(*args: str) -> object:
        r = rf(*args, "--json", *common)
        assert r.returncode == 0, (args, r.stderr)
        return json.loads(r.stdout)

    job = js("submit", "Json all the way", "--model", "template", "--frames", "6", "--wait")
    assert isinstance(job, dict) and job["state"] == "succeeded"
    asset_id = job["asset_id"]
    assert js("jobs", "show", job["id"])["id"] == job["id"]  # type: ignore[index]
    assert any(j["id"] == job["id"] for j in js("jobs", "list", "--state", "succeeded"))  # type: ignore[attr-defined]
    assert js("assets", "show", asset_id)["id"] == asset_id  # type: ignore[index]
    assert isinstance(js("assets", "list", "--state", "pending_review"), list)
    assert any(a["id"] == asset_id for a in js("review", "list"))  # type: ignore[attr-defined]
    assert isinstance(js("keys", "list"), list)
    assert isinstance(js("models", "list"), list)
    assert "allow_self_approval" in js("tenant", "show")  # type: ignore[operator]
    assert isinstance(js("usage", "--by", "model"), list)
    r = rf("assets", "download", asset_id, "-o", str(tmp_path / "a.mp4"), "--json", *common)
    assert json.loads(r.stdout)["bytes"] == (tmp_path / "a.mp4").stat().st_size
    r = rf("prices", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["rows"]
    r = rf("verify", str(tmp_path / "a.mp4"), "--json", "--data-dir", str(server.data_dir))
    assert r.returncode == 0 and json.loads(r.stdout)["valid"], r.stderr
    r = rf("audit", "verify", "--json", "--data-dir", str(server.data_dir))
    assert r.returncode == 0 and json.loads(r.stdout)["ok"] is True, r.stderr
    # Root-level options, and $REELFOUNDRY_SERVER, reach the command.
    r = rf("--server", server.url, "--api-key", server.admin_key, "jobs", "list", "--json")
    assert r.returncode == 0 and any(j["id"] == job["id"] for j in json.loads(r.stdout)), r.stderr


def test_submit_takes_the_generation_options(server: Server) -> None:
    common = ["--server", server.url, "--api-key", server.admin_key]
    example = Path(__file__).parents[2] / "examples" / "welcome.json"
    args = ["--template", str(example), "--fps", "12", "--steps", "3", "--guidance", "2.5", "--seed", "9"]
    args += ["--size", "320x180", "--negative", "b", "--json", *common]
    r = rf("submit", "Templated", "--model", "template", *args)
    assert r.returncode == 0, r.stderr
    job = json.loads(rf("jobs", "show", json.loads(r.stdout)["id"], "--json", *common).stdout)
    request = job["request"]
    assert (request["fps"], request["steps"], request["guidance_scale"], request["seed"]) == (12, 3, 2.5, 9)
    assert (request["width"], request["height"], request["negative_prompt"]) == (320, 180, "b")
    assert request["template"]["scenes"]


def test_budgets_commands(server: Server) -> None:
    common = ["--server", server.url, "--api-key", server.admin_key]
    r = rf(
        "budgets", "create", "--name", "cli-budget", "--limit-usd", "12.5", "--scope", "project",
        "--scope-value", "cli-budget-project", "--period", "week", "--enforcement", "soft", "--json", *common,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    budget = json.loads(r.stdout)
    assert (budget["scope"], budget["period"], budget["enforcement"]) == ("project", "week", "soft")
    assert float(budget["limit_usd"]) == 12.5
    listed = json.loads(rf("budgets", "list", "--json", *common).stdout)
    assert budget["id"] in {b["id"] for b in listed}
    r = rf("budgets", "list", *common)
    assert r.returncode == 0 and "Budgets" in r.stdout and "12.5" in r.stdout
    r = rf("budgets", "create", "--name", "x", "--limit-usd", "lots", *common)
    assert r.returncode == 2 and "--limit-usd" in r.stderr and "Traceback" not in r.stderr
    r = rf("budgets", "create", "--name", "x", "--limit-usd", "5", "--scope", "project", *common)
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = rf("budgets", "delete", budget["id"], "--json", *common)
    assert r.returncode == 0 and json.loads(r.stdout)["id"] == budget["id"]
    assert budget["id"] not in {b["id"] for b in json.loads(rf("budgets", "list", "--json", *common).stdout)}
    r = rf("budgets", "delete", budget["id"], *common)
    assert r.returncode == 2 and "not found" in r.stderr


def test_webhooks_commands(server: Server) -> None:
    common = ["--server", server.url, "--api-key", server.admin_key]
    r = rf("webhooks", "deliveries", "--json", *common)
    assert r.returncode == 0 and isinstance(json.loads(r.stdout), list), r.stderr
    assert rf("webhooks", "deliveries", *common).returncode == 0
    old = json.loads(rf("webhooks", "secret", "--json", *common).stdout)
    assert old["secret"].startswith("whsec_")
    r = rf("webhooks", "secret", *common)
    assert r.stdout.strip() == old["secret"]
    new = json.loads(rf("webhooks", "rotate", "--grace-s", "60", "--json", *common).stdout)
    assert new["secret"] != old["secret"] and new["previous_secret"] == old["secret"]
    new2 = json.loads(rf("webhooks", "rotate", "--grace-s", "0", "--json", *common).stdout)
    assert new2["previous_secret"] is None
    r = rf("webhooks", "rotate", "--grace-s", "-1", *common)
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_verify_trusts_both_default_data_dirs(tmp_path: Path) -> None:
    """Without --data-dir, verify trusts the CAs of ./reelfoundry-data (serve) and the user data dir (generate)."""
    args = ["--model", "template", "--frames", "2", "--size", "64x64"]
    assert rf("generate", "a", *args, "-o", "a.mp4", "--data-dir", "reelfoundry-data", cwd=tmp_path).returncode == 0
    assert rf("generate", "b", *args, "-o", "b.mp4", cwd=tmp_path).returncode == 0
    for name in ("a.mp4", "b.mp4"):
        r = rf("verify", name, "--json", cwd=tmp_path)
        assert r.returncode == 0 and json.loads(r.stdout)["validation_state"] == "Trusted", (name, r.stderr)
