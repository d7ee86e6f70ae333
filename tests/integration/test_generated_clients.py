"""Standard generators turn schemas/openapi.json into working clients: Python (openapi-python-client) used
against a live server, and TypeScript types (openapi-typescript) that a usage file type-checks against."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from server import Server, server_env

ROOT = Path(__file__).parents[2]
DOCUMENT = ROOT / "schemas" / "openapi.json"
#: Where the npm packages the TypeScript test needs are installed once and reused (npx runs from there).
NPM_CACHE = Path(os.environ.get("REELFOUNDRY_TEST_NPM_CACHE", Path.home() / ".cache" / "reelfoundry-tests" / "npm"))
NPM_PACKAGES = ["openapi-typescript@7", "typescript@5"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("gen") / "data", server_env()).start()
    yield srv
    srv.stop()


def test_openapi_python_client_generates_a_working_client_without_warnings(tmp_path: Path, server: Server) -> None:
    out = tmp_path / "client-out"
    generate = [sys.executable, "-m", "openapi_python_client", "generate", "--path", str(DOCUMENT)]
    run = subprocess.run([*generate, "--output-path", str(out)], capture_output=True, text=True, timeout=300)
    printed = run.stdout + run.stderr
    assert run.returncode == 0, printed
    assert "warning" not in printed.lower() and "unable" not in printed.lower(), printed
    package = out / "reel_foundry_client"
    assert (package / "models" / "job.py").is_file() and (package / "models" / "page_job.py").is_file()

    sys.path.insert(0, str(out))
    try:
        client_mod: Any = importlib.import_module("reel_foundry_client")
        models: Any = importlib.import_module("reel_foundry_client.models")
        jobs_api: Any = importlib.import_module("reel_foundry_client.api.jobs")
        assets_api: Any = importlib.import_module("reel_foundry_client.api.assets")
        submit_job = importlib.import_module("reel_foundry_client.api.jobs.submit_job")
        get_job = importlib.import_module("reel_foundry_client.api.jobs.get_job")
        get_asset = importlib.import_module("reel_foundry_client.api.assets.get_asset")
        get_content = importlib.import_module("reel_foundry_client.api.assets.get_asset_content")
        assert jobs_api and assets_api
        client = client_mod.AuthenticatedClient(base_url=server.url, token=server.admin_key)
        request = models.VideoRequest(prompt="Hello from a generated client", model="template", num_frames=12)
        job = submit_job.sync(client=client, body=request, idempotency_key="generated-client-1")
        assert isinstance(job, models.Job), job
        deadline = time.monotonic() + 60
        while job.state not in (models.JobState.SUCCEEDED, models.JobState.FAILED):
            assert time.monotonic() < deadline, job.state
            time.sleep(0.1)
            job = get_job.sync(job.id, client=client)
        assert job.state == models.JobState.SUCCEEDED, job
        asset = get_asset.sync(job.asset_id, client=client)
        assert isinstance(asset, models.Asset) and asset.num_frames == 12
        content = get_content.sync_detailed(job.asset_id, client=client)
        assert content.status_code == 200
        assert content.content[4:8] == b"ftyp" and len(content.content) == asset.bytes_
        problem = get_job.sync("01JDQ0Z8Y6M3V4W5X6Y7Z8A9BC", client=client)
        assert isinstance(problem, models.Problem) and problem.status == 404
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m.startswith("reel_foundry_client")]:
            del sys.modules[name]


USAGE_TS = """
import type { components, operations, paths } from "./api";

type Job = components["schemas"]["Job"];
type Request = components["schemas"]["VideoRequest"];
type Problem = components["schemas"]["Problem"];
type Submitted = paths["/v1/jobs"]["post"]["responses"][201]["content"]["application/json"];
type Refused = operations["submit_job"]["responses"][422]["content"]["application/problem+json"];

const request: Request = { prompt: "Hello", model: "template", num_frames: 12 };
const job: Submitted = {} as Job;
const state: Job["state"] = "succeeded";
const refused: Refused = {
  type: "https://reelfoundry.dev/problems/invalid-parameter", title: "x", status: 422, detail: "y",
};
const problem: Problem = refused;
export { request, job, state, problem };
"""


def _npm_tools() -> Path:
    """The cached npm install with openapi-typescript and typescript (made on first use)."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed: the TypeScript generator test needs Node.js and npm")
    marker = NPM_CACHE / "node_modules" / ".bin" / "tsc"
    if not marker.exists():
        NPM_CACHE.mkdir(parents=True, exist_ok=True)
        install = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(NPM_CACHE), *NPM_PACKAGES],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if install.returncode != 0:
            if "ENOTFOUND" in install.stderr or "EAI_AGAIN" in install.stderr or "ECONNREFUSED" in install.stderr:
                pytest.skip(f"the npm registry is unreachable: {install.stderr.strip().splitlines()[-1]}")
            raise AssertionError(install.stderr)
    return NPM_CACHE


def test_openapi_typescript_types_check_a_usage_file(tmp_path: Path) -> None:
    tools = _npm_tools()
    npx = shutil.which("npx")
    assert npx is not None
    # --default-non-nullable false: a field with a default is optional to send (v7 makes it required).
    options = ["--default-non-nullable", "false", "-o", str(tmp_path / "api.d.ts")]
    generate = subprocess.run(
        [npx, "--prefix", str(tools), "openapi-typescript", str(DOCUMENT), *options],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert generate.returncode == 0, generate.stdout + generate.stderr
    (tmp_path / "usage.ts").write_text(USAGE_TS)
    check = subprocess.run(
        [npx, "--prefix", str(tools), "tsc", "--noEmit", "--strict", "--target", "es2020", "usage.ts"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    # The check can fail: a usage that contradicts the contract is refused.
    (tmp_path / "wrong.ts").write_text(USAGE_TS.replace('"succeeded"', '"finished"'))
    wrong = subprocess.run(
        [npx, "--prefix", str(tools), "tsc", "--noEmit", "--strict", "--target", "es2020", "wrong.ts"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert wrong.returncode != 0 and "finished" in wrong.stdout
