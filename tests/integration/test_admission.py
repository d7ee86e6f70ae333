"""Idempotency and bad input: 4xx problems, never a 500, never a half-written row."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from server import Server


def _count_jobs(c: httpx.Client) -> int:
    return len(c.get("/v1/jobs", params={"limit": 200}).json()["items"])


def test_idempotency_key(server: Server) -> None:
    body = {"prompt": "once", "model": "template", "num_frames": 4}
    with server.client() as c:
        first = c.post("/v1/jobs", json=body, headers={"Idempotency-Key": "abc-1"})
        again = c.post("/v1/jobs", json=body, headers={"Idempotency-Key": "abc-1"})
        assert first.status_code == 201 and again.status_code == 200
        assert first.json()["id"] == again.json()["id"] and again.headers["idempotent-replayed"] == "true"
        other = c.post("/v1/jobs", json={**body, "prompt": "twice"}, headers={"Idempotency-Key": "abc-1"})
        assert other.status_code == 409 and other.json()["type"].endswith("/idempotency-key-reused")
        assert c.post("/v1/jobs", json=body, headers={"Idempotency-Key": "abc-2"}).json()["id"] != first.json()["id"]


BAD: list[tuple[Any, str, int]] = [
    ({}, "prompt", 422),
    ({"prompt": ""}, "prompt", 422),
    ({"prompt": "x" * 20_000}, "prompt", 422),
    ({"prompt": "x", "num_frames": -5}, "num_frames", 422),
    ({"prompt": "x", "num_frames": 10**12}, "num_frames", 422),
    ({"prompt": "x", "num_frames": 2000, "model": "template", "width": 64, "height": 64}, "", 201),
    ({"prompt": "x", "num_frames": 2881}, "num_frames", 422),
    ({"prompt": "x", "model": "faulty", "num_frames": 65}, "num_frames", 422),
    ({"prompt": "x", "width": "wide"}, "width", 422),
    ({"prompt": ["a"]}, "prompt", 422),
    ({"prompt": "x", "model": "no-such-model"}, "model", 422),
    ({"prompt": "x", "inputs": ["01ARZ3NDEKTSV4RRFFQ69G5FAV"]}, "inputs[0]", 422),
    ({"prompt": "x", "webhook_url": "not a url"}, "webhook_url", 422),
    ({"prompt": "x", "template": {"scenes": []}}, "template.scenes", 422),
    ("not json at all", "body", 422),
    ([1, 2, 3], "body", 422),
]


@pytest.mark.parametrize(("body", "parameter", "status"), BAD)
def test_bad_job_bodies(server: Server, body: Any, parameter: str, status: int) -> None:
    with server.client() as c:
        before = _count_jobs(c)
        if isinstance(body, str):
            r = c.post("/v1/jobs", content=body, headers={"Content-Type": "application/json"})
        else:
            r = c.post("/v1/jobs", json=body)
        assert r.status_code == status, r.text
        if status == 201:
            c.post(f"/v1/jobs/{r.json()['id']}/cancel")
            return
        problem = r.json()
        assert r.headers["content-type"] == "application/problem+json"
        assert {"type", "title", "status", "detail"} <= problem.keys() and problem["status"] == status
        assert problem["parameter"].startswith(parameter), problem
        assert _count_jobs(c) == before


def test_oversized_body_is_413(server: Server) -> None:
    big = b'{"prompt":"' + b"x" * 2_000_000 + b'"}'

    def chunked() -> Iterator[bytes]:  # no Content-Length: the limit must hold while streaming
        for i in range(0, len(big), 65536):
            yield big[i : i + 65536]

    with server.client() as c:
        for body in (big, chunked()):
            r = c.post("/v1/jobs", content=body, headers={"Content-Type": "application/json"})
            assert r.status_code == 413 and r.json()["type"].endswith("/payload-too-large"), r.text


@pytest.mark.parametrize(
    ("headers", "params", "status"),
    [
        ({"Last-Event-ID": "²".encode("latin-1")}, {}, 400),
        ({"Last-Event-ID": "9" * 20}, {}, 400),
        ({"Last-Event-ID": "abc"}, {}, 400),
        ({}, {"after": "9" * 20}, 422),
        ({}, {"after": -1}, 422),
    ],
)
def test_bad_event_cursors(server: Server, headers: dict[str, Any], params: dict[str, Any], status: int) -> None:
    with server.client() as c:
        job = c.post("/v1/jobs", json={"prompt": "e", "model": "template", "num_frames": 2}).json()
        r = c.get(f"/v1/jobs/{job['id']}/events", headers=headers, params=params)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("field", ["project", "campaign"])
def test_control_characters_in_labels_are_refused(server: Server, field: str) -> None:
    with server.client() as c:
        r = c.post("/v1/jobs", json={"prompt": "x", "labels": {field: "bad\u0000name"}})
        assert r.status_code == 422 and r.json()["parameter"] == f"labels.{field}"
        assert c.get("/v1/assets", params={field: "a\x00b"}).status_code == 422
        assert c.post("/v1/keys", json={"name": "nul\u0000", "role": "viewer"}).status_code == 422


@pytest.mark.parametrize(
    ("path", "params", "headers", "status"),
    [
        ("/v1/jobs", {"cursor": "garbage!"}, {}, 400),
        ("/v1/jobs", {"limit": 0}, {}, 422),
        ("/v1/jobs", {"limit": 100000}, {}, 422),
        ("/v1/jobs", {"state": "exploded"}, {}, 422),
        ("/v1/jobs/../../etc/passwd", {}, {}, 404),
        ("/v1/jobs/not-an-id", {}, {}, 404),
        ("/v1/assets/%2e%2e%2fadmin.key/content", {}, {}, 404),
        ("/v1/models/nope", {}, {}, 404),
        ("/v1/schemas/Nope", {}, {}, 404),
        ("/v1/nothing-here", {}, {}, 404),
    ],
)
def test_bad_queries(server: Server, path: str, params: dict[str, Any], headers: dict[str, str], status: int) -> None:
    with server.client() as c:
        r = c.get(path, params=params, headers=headers)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"


def test_malformed_range(server: Server) -> None:
    with server.client() as c:
        job = c.post("/v1/jobs", json={"prompt": "r", "model": "template", "num_frames": 2}).json()
        from server import wait_state

        asset = wait_state(c, job["id"], {"succeeded"})["asset_id"]
        for bad in ("bytes=abc", "items=0-1", "bytes=9-3", "bytes=-"):
            r = c.get(f"/v1/assets/{asset}/content", headers={"Range": bad})
            assert r.status_code == 400 and r.json()["parameter"] == "Range", (bad, r.text)
