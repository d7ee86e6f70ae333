"""The OpenAPI document is the contract: committed, matching the app, generator-friendly, complete."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from inprocess import AppFactory

from reelfoundry.api.compat import breaking_changes
from reelfoundry.api.openapi import render

COMMITTED = Path(__file__).parents[3] / "schemas" / "openapi.json"
REGENERATE = "reelfoundry schema export schemas"


@pytest.fixture
def live(make_app: AppFactory) -> dict[str, Any]:
    client, _ = make_app()
    return dict(client.get("/openapi.json").json())


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_the_committed_document_is_the_running_apps(make_app: AppFactory, live: dict[str, Any]) -> None:
    committed = json.loads(COMMITTED.read_text())
    problems = breaking_changes(committed, live)
    assert problems == [], "breaking changes inside v1:\n" + "\n".join(problems)
    client, _ = make_app()
    assert COMMITTED.read_text() == render(client.app), f"schemas/openapi.json is stale: run `{REGENERATE}`"  # type: ignore[arg-type]


def test_one_schema_per_model_and_readable_operation_ids(live: dict[str, Any]) -> None:
    names = set(live["components"]["schemas"])
    assert not [n for n in names if n.endswith(("-Input", "-Output"))]
    assert {"Job", "VideoRequest", "Asset", "Problem", "Page_Job_"} <= names
    assert "HTTPValidationError" not in names
    ids = [op["operationId"] for _, _, op in _operations(live)]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", i) and "v1" not in i for i in ids), ids
    assert {"submit_job", "get_job", "list_jobs", "cancel_job", "list_assets", "get_asset_content"} <= set(ids)


def test_every_operation_is_documented_with_a_summary_a_tag_and_an_example(live: dict[str, Any]) -> None:
    tags = {t["name"]: t["description"] for t in live["tags"]}
    for path, method, op in _operations(live):
        where = f"{method.upper()} {path}"
        assert op.get("summary"), where
        assert op.get("tags") and all(tags.get(t) for t in op["tags"]), where
        assert op["x-codeSamples"][0]["source"].startswith("curl"), where
        body = op.get("requestBody", {}).get("content", {})
        if "application/json" in body:
            assert body["application/json"].get("example"), f"{where} has no example request body"


def test_protected_operations_declare_the_bearer_scheme_and_their_problems(live: dict[str, Any]) -> None:
    assert live["components"]["securitySchemes"]["apiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "rf_<id>_<secret>",
        "description": live["components"]["securitySchemes"]["apiKey"]["description"],
    }
    open_paths = {"/healthz", "/readyz", "/metrics", "/v1/delivery/{asset_id}", "/v1/schemas", "/v1/schemas/{name}"}
    for path, method, op in _operations(live):
        where = f"{method.upper()} {path}"
        responses = op["responses"]
        if path not in open_paths:
            assert op.get("security") == [{"apiKey": []}], where
            assert {"401", "403", "429"} <= set(responses), where
            assert "Retry-After" in responses["429"]["headers"], where
        if "{" in path:
            assert "404" in responses, where
        if "requestBody" in op:
            assert {"413", "422"} <= set(responses), where
        for status, response in responses.items():
            if status[0] in "45":
                assert response["content"] == {
                    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
                }, (where, status)
    submit = live["paths"]["/v1/jobs"]["post"]["responses"]
    assert {"402", "409", "503"} <= set(submit)


def test_streams_and_files_are_described_as_what_they_are(live: dict[str, Any]) -> None:
    events = live["paths"]["/v1/jobs/{job_id}/events"]["get"]["responses"]["200"]["content"]
    assert "text/event-stream" in events
    content = live["paths"]["/v1/assets/{asset_id}/content"]["get"]["responses"]["200"]["content"]
    assert content["video/mp4"]["schema"] == {"type": "string", "format": "binary"}
    assert "application/octet-stream" in content
    upload = live["paths"]["/v1/assets"]["post"]["requestBody"]["content"]
    assert upload == {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}


def test_docs_are_served_offline(make_app: AppFactory) -> None:
    client: TestClient
    client, _ = make_app()
    for page in ("/docs", "/redoc"):
        r = client.get(page)
        assert r.status_code == 200
        csp = r.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "http" not in csp
        sources = re.findall(r'(?:src|href)="([^"]+)"', r.text)
        assert sources and all(s.startswith("/") for s in sources), sources
        for source in sources:
            asset = client.get(source)
            assert asset.status_code == 200 and len(asset.content) > 100, source
    assert client.get("/docs/assets/../../etc/passwd").status_code == 404


# --- the compatibility checker ------------------------------------------------------------------------------


def _doc() -> dict[str, Any]:
    return json.loads((Path(__file__).parent / "fixtures" / "openapi_v1.json").read_text())


def test_an_identical_or_additive_document_is_compatible() -> None:
    old = _doc()
    assert breaking_changes(old, copy.deepcopy(old)) == []
    new = copy.deepcopy(old)
    new["paths"]["/v1/things/{id}/archive"] = {"post": {"operationId": "archive_thing", "responses": {}}}
    new["components"]["schemas"]["ThingCreate"]["properties"]["colour"] = {"type": "string"}
    new["components"]["schemas"]["Thing"]["properties"]["created_at"] = {"type": "string"}
    new["components"]["schemas"]["State"]["enum"].append("archived")
    assert breaking_changes(old, new) == []


def test_a_removed_field_and_a_newly_required_one_are_named() -> None:
    old = _doc()
    new = copy.deepcopy(old)
    del new["components"]["schemas"]["Thing"]["properties"]["label"]
    new["components"]["schemas"]["ThingCreate"]["required"].append("note")
    assert breaking_changes(old, new) == [
        "field removed: Thing.label",
        "request field became required: ThingCreate.note",
    ]


def test_removed_paths_operations_enum_values_and_narrowed_types_are_named() -> None:
    old = _doc()
    new = copy.deepcopy(old)
    del new["paths"]["/v1/things/{id}"]
    del new["paths"]["/v1/things"]["get"]
    new["components"]["schemas"]["State"]["enum"].remove("draft")
    new["components"]["schemas"]["ThingCreate"]["properties"]["note"] = {"type": "string"}
    new["paths"]["/v1/things"]["post"]["parameters"][0]["required"] = True
    assert breaking_changes(old, new) == [
        "path removed: /v1/things/{id}",
        "operation removed: GET /v1/things",
        "parameter became required: POST /v1/things query dry_run",
        "enum value removed: State ['draft']",
        "request field type narrowed: ThingCreate.note no longer accepts null",
    ]
