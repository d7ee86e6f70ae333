"""Schemathesis against /openapi.json with a valid admin key: every operation, no 5xx, no response off-schema."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from server import Server, server_env

# The API only (no worker: fuzzed sizes would render for minutes), and webhooks only to loopback, so
# fuzzed webhook_urls are refused at admission instead of being called.
ENV = {"worker_slots": 0, "webhook_allowed_hosts": json.dumps(["127.0.0.1"])}


def test_no_operation_answers_5xx_or_off_schema(tmp_path: Path) -> None:
    srv = Server(tmp_path / "data", server_env(**ENV)).start()
    try:
        cmd = [
            sys.executable,
            "-c",
            "from schemathesis.cli import schemathesis; schemathesis()",
            "run",
            f"{srv.url}/openapi.json",
            "-H",
            f"Authorization: Bearer {srv.admin_key}",
            "--checks",
            "not_a_server_error,response_schema_conformance",
            "--max-examples",
            "15",
            "--seed",
            "1",
            "--no-color",
        ]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL, cwd=tmp_path)
    finally:
        srv.stop()
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "passed" in r.stdout
