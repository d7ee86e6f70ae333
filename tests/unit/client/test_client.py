"""The client against a scripted HTTP server on 127.0.0.1: retries, errors, resumed downloads and streams, pages."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from reelfoundry.client import ApiError, AsyncClient, Client, IntegrityError, NetworkError
from reelfoundry.schema import Event, Job, JobState, VideoRequest


@dataclass
class Seen:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


#: handler(n, request, h): answer the n-th request (0-based) by writing to ``h``.
Handler = Callable[[int, Seen, BaseHTTPRequestHandler], None]


@dataclass
class Scripted:
    """A running scripted server."""

    url: str
    requests: list[Seen] = field(default_factory=list)


def reply(
    h: BaseHTTPRequestHandler, status: int, body: bytes | str | dict[str, Any], headers: dict[str, str] | None = None
) -> None:
    """A complete response (a dict body is JSON, problem+json for errors)."""
    if isinstance(body, dict):
        data = json.dumps(body).encode()
        ctype = "application/problem+json" if status >= 400 else "application/json"
    else:
        data = body.encode() if isinstance(body, str) else body
        ctype = "application/octet-stream"
    h.send_response(status)
    h.send_header("Content-Type", ctype)
    h.send_header("Content-Length", str(len(data)))
    for name, value in (headers or {}).items():
        h.send_header(name, value)
    h.end_headers()
    h.wfile.write(data)


def cut(h: BaseHTTPRequestHandler) -> None:
    """Drop the connection now (mid-response)."""
    h.wfile.flush()
    h.connection.shutdown(socket.SHUT_RDWR)
    h.close_connection = True


def problem(status: int, slug: str, detail: str, **extra: Any) -> dict[str, Any]:
    """An RFC 9457 body as the API sends it."""
    return {
        "type": f"https://reelfoundry.dev/problems/{slug}",
        "title": slug,
        "status": status,
        "detail": detail,
    } | extra


def job_body(job_id: str = "j1", state: str = "queued") -> dict[str, Any]:
    """A valid Job as JSON."""
    job = Job(
        id=job_id,
        tenant_id="t1",
        state=state,  # type: ignore[arg-type]
        request=VideoRequest(prompt="Hello"),
        model="template",
        priority="interactive",
        attempts=0,
        max_attempts=3,
        progress=0,
        cancel_requested=False,
        created_at=datetime.now(UTC),
    )
    return json.loads(job.model_dump_json())  # type: ignore[no-any-return]


def sse(event_id: int, kind: str, job_id: str = "j1") -> bytes:
    """One SSE event as the server frames it."""
    ev = Event(id=event_id, job_id=job_id, tenant_id="t1", type=kind, data={}, created_at=datetime.now(UTC))
    return f"id: {event_id}\nevent: {kind}\ndata: {ev.model_dump_json()}\n\n".encode()


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], Scripted]]:
    """Start scripted servers for the test; all are shut down after it."""
    servers: list[ThreadingHTTPServer] = []

    def start(handler: Handler) -> Scripted:
        lock = threading.Lock()

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                seen = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, b"")
                seen.body = self.rfile.read(length) if length else b""
                with lock:
                    n = len(scripted.requests)
                    scripted.requests.append(seen)
                handler(n, seen, self)

            do_GET = do_POST = do_DELETE = _any

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        httpd.daemon_threads = True
        servers.append(httpd)
        scripted = Scripted(f"http://127.0.0.1:{httpd.server_address[1]}")
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        return scripted

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


# --- retries ---------------------------------------------------------------------------------------------


def test_submit_retries_429_after_retry_after_with_the_same_idempotency_key(
    serve: Callable[[Handler], Scripted],
) -> None:
    def handler(n: int, seen: Seen, h: BaseHTTPRequestHandler) -> None:
        if n == 0:
            reply(h, 429, problem(429, "rate-limited", "slow down", retry_after_s=1), {"Retry-After": "1"})
        else:
            reply(h, 201, job_body("j42"))

    srv = serve(handler)
    with Client(srv.url, api_key="k") as c:
        started = time.monotonic()
        job = c.jobs.submit(prompt="Hello", model="template")
        elapsed = time.monotonic() - started
    assert isinstance(job, Job) and job.id == "j42"
    assert [r.method + " " + r.path for r in srv.requests] == ["POST /v1/jobs"] * 2
    keys = {r.headers.get("idempotency-key") for r in srv.requests}
    assert len(keys) == 1 and None not in keys
    assert json.loads(srv.requests[0].body) == {"prompt": "Hello", "model": "template"}
    assert srv.requests[0].headers["authorization"] == "Bearer k"
    assert elapsed >= 0.95, "Retry-After: 1 was not honoured"


def test_submit_keeps_the_callers_idempotency_key_and_a_video_request(serve: Callable[[Handler], Scripted]) -> None:
    srv = serve(lambda n, seen, h: reply(h, 201, job_body()))
    with Client(srv.url, api_key="k") as c:
        c.jobs.submit(VideoRequest(prompt="Hi", model="template", seed=7), idempotency_key="mine")
    assert srv.requests[0].headers["idempotency-key"] == "mine"
    assert json.loads(srv.requests[0].body) == {"prompt": "Hi", "model": "template", "seed": 7}


def test_get_retries_503_with_an_http_date(serve: Callable[[Handler], Scripted]) -> None:
    def handler(n: int, seen: Seen, h: BaseHTTPRequestHandler) -> None:
        if n == 0:
            reply(h, 503, problem(503, "busy", "try later"), {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
        else:
            reply(h, 200, job_body("j7", "running"))

    srv = serve(handler)
    with Client(srv.url, api_key="k") as c:
        job = c.jobs.get("j7")
    assert job.state == JobState.running
    assert len(srv.requests) == 2


def test_gives_up_after_max_retries(serve: Callable[[Handler], Scripted]) -> None:
    srv = serve(lambda n, seen, h: reply(h, 503, problem(503, "busy", "full"), {"Retry-After": "0"}))
    with Client(srv.url, api_key="k", max_retries=2) as c, pytest.raises(ApiError) as info:
        c.jobs.get("j1")
    assert info.value.status == 503 and info.value.headers["retry-after"] == "0"
    assert len(srv.requests) == 3


@pytest.mark.parametrize("status", [400, 422])
def test_no_retry_on_client_errors(serve: Callable[[Handler], Scripted], status: int) -> None:
    body = problem(status, "invalid-parameter", "must be a public http(s) URL", parameter="webhook_url")
    srv = serve(lambda n, seen, h: reply(h, status, body))
    with Client(srv.url, api_key="k") as c, pytest.raises(ApiError) as info:
        c.jobs.submit(prompt="Hello", model="template", webhook_url="http://10.0.0.1/")
    err = info.value
    assert len(srv.requests) == 1
    assert err.status == status and err.problem == body
    assert err.type == "https://reelfoundry.dev/problems/invalid-parameter" and err.code == "invalid-parameter"
    assert err.parameter == "webhook_url" and err.detail == "must be a public http(s) URL"
    assert str(err) == f"{status} invalid-parameter: webhook_url: must be a public http(s) URL"


def test_a_non_json_error_is_still_an_api_error(serve: Callable[[Handler], Scripted]) -> None:
    srv = serve(lambda n, seen, h: reply(h, 404, "<html>\nno\n</html>"))
    with Client(srv.url) as c, pytest.raises(ApiError) as info:
        c.assets.get("a1")
    assert info.value.status == 404 and info.value.type == "about:blank"
    assert "\n" not in str(info.value)


def test_unreachable_server_is_a_network_error_after_retries() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with Client(f"http://127.0.0.1:{port}", max_retries=2) as c, pytest.raises(NetworkError) as info:
        c.jobs.get("j1")
    assert info.value.attempts == 3 and isinstance(info.value.__cause__, httpx.ConnectError)


def test_a_dropped_non_idempotent_post_is_not_retried(serve: Callable[[Handler], Scripted]) -> None:
    srv = serve(lambda n, seen, h: cut(h))
    with Client(srv.url, api_key="k") as c, pytest.raises(NetworkError):
        c.keys.create("bot", "viewer")
    assert len(srv.requests) == 1


def test_a_dropped_idempotent_submit_is_retried(serve: Callable[[Handler], Scripted]) -> None:
    srv = serve(lambda n, seen, h: cut(h) if n == 0 else reply(h, 200, job_body("j9")))
    with Client(srv.url, api_key="k") as c:
        assert c.jobs.submit(prompt="Hello", model="template").id == "j9"
    assert len(srv.requests) == 2
    assert srv.requests[0].headers["idempotency-key"] == srv.requests[1].headers["idempotency-key"]


# --- downloads --------------------------------------------------------------------------------------------

CONTENT = os.urandom(700_000)
SHA = hashlib.sha256(CONTENT).hexdigest()


def _content_server(serve: Callable[[Handler], Scripted], etag: str, cut_at: int | None) -> Scripted:
    def handler(n: int, seen: Seen, h: BaseHTTPRequestHandler) -> None:
        assert seen.path == "/v1/assets/a1/content"
        rng = seen.headers.get("range")
        start = int(rng.removeprefix("bytes=").rstrip("-")) if rng else 0
        h.send_response(206 if rng else 200)
        h.send_header("Content-Type", "video/mp4")
        h.send_header("ETag", etag)
        h.send_header("Content-Length", str(len(CONTENT) - start))
        if rng:
            h.send_header("Content-Range", f"bytes {start}-{len(CONTENT) - 1}/{len(CONTENT)}")
        h.end_headers()
        if n == 0 and cut_at is not None:
            h.wfile.write(CONTENT[:cut_at])
            cut(h)
        else:
            h.wfile.write(CONTENT[start:])

    return serve(handler)


def test_download_resumes_with_range_after_a_cut(serve: Callable[[Handler], Scripted], tmp_path: Path) -> None:
    srv = _content_server(serve, f'"{SHA}"', cut_at=300_000)
    target = tmp_path / "out.mp4"
    with Client(srv.url, api_key="k") as c:
        assert c.assets.download("a1", target) == target
    assert hashlib.sha256(target.read_bytes()).hexdigest() == SHA
    assert len(srv.requests) == 2 and "range" not in srv.requests[0].headers
    resumed_at = int(srv.requests[1].headers["range"].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at <= 300_000
    assert srv.requests[1].headers["if-range"] == f'"{SHA}"'
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


def test_download_refuses_bytes_that_do_not_match_the_etag(
    serve: Callable[[Handler], Scripted], tmp_path: Path
) -> None:
    srv = _content_server(serve, '"' + "0" * 64 + '"', cut_at=None)
    with Client(srv.url, api_key="k") as c, pytest.raises(IntegrityError):
        c.assets.download("a1", tmp_path / "out.mp4")
    assert list(tmp_path.iterdir()) == []


# --- event streams ----------------------------------------------------------------------------------------


def _events_server(serve: Callable[[Handler], Scripted]) -> Scripted:
    """First stream: two events, then the connection breaks mid-chunk; second: the final event."""

    def handler(n: int, seen: Seen, h: BaseHTTPRequestHandler) -> None:
        if seen.path == "/v1/jobs/j1":
            reply(h, 200, job_body("j1", "succeeded"))
            return
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        if "last-event-id" not in seen.headers:
            for chunk in (b"retry: 10\n\n", sse(1, "job.running"), sse(2, "job.progress"), b"id: 3\ndata: {"):
                h.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            cut(h)
        else:
            for chunk in (b": keep-alive\n\n", sse(3, "job.succeeded"), b""):
                h.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))

    return serve(handler)


def test_wait_resumes_with_last_event_id(serve: Callable[[Handler], Scripted]) -> None:
    srv = _events_server(serve)
    seen: list[Event] = []
    with Client(srv.url, api_key="k") as c:
        job = c.jobs.wait("j1", on_progress=seen.append, timeout=30)
    assert job.state == JobState.succeeded
    assert [(e.id, e.type) for e in seen] == [(1, "job.running"), (2, "job.progress"), (3, "job.succeeded")]
    streams = [r for r in srv.requests if r.path.endswith("/events")]
    assert len(streams) == 2 and streams[1].headers["last-event-id"] == "2"


def test_wait_times_out(serve: Callable[[Handler], Scripted]) -> None:
    def handler(n: int, seen: Seen, h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        h.wfile.write(b"%x\r\n%s\r\n" % (len(sse(1, "job.queued")), sse(1, "job.queued")))
        time.sleep(2)

    srv = serve(handler)
    with Client(srv.url, api_key="k") as c, pytest.raises(TimeoutError):
        c.jobs.wait("j1", timeout=0.5)


# --- pages ------------------------------------------------------------------------------------------------


def _pages_server(serve: Callable[[Handler], Scripted]) -> Scripted:
    pages = {None: (["a", "b"], "c1"), "c1": (["c", "d"], "c2"), "c2": (["e"], None)}

    def handler(n: int, seen: Seen, h: BaseHTTPRequestHandler) -> None:
        query = parse_qs(urlsplit(seen.path).query)
        ids, nxt = pages[query.get("cursor", [None])[0]]
        assert query["limit"] == ["2"] and query["state"] == ["queued"]
        reply(h, 200, {"items": [job_body(i) for i in ids], "next_cursor": nxt})

    return serve(handler)


def test_list_iterates_over_every_page(serve: Callable[[Handler], Scripted]) -> None:
    srv = _pages_server(serve)
    with Client(srv.url, api_key="k") as c:
        jobs = list(c.jobs.list(state="queued", limit=2))
    assert [j.id for j in jobs] == ["a", "b", "c", "d", "e"]
    assert len(srv.requests) == 3


# --- the async client -------------------------------------------------------------------------------------


def test_async_client_retries_pages_waits_and_downloads(serve: Callable[[Handler], Scripted], tmp_path: Path) -> None:
    def submit(n: int, seen: Seen, h: BaseHTTPRequestHandler) -> None:
        if n == 0:
            reply(h, 429, problem(429, "rate-limited", "slow down"), {"Retry-After": "1"})
        else:
            reply(h, 201, job_body("j42"))

    submits, pages, events = serve(submit), _pages_server(serve), _events_server(serve)
    content = _content_server(serve, f'"{SHA}"', cut_at=123_456)
    progress: list[int] = []

    async def on_progress(event: Event) -> None:
        progress.append(event.id)

    async def main() -> None:
        async with AsyncClient(submits.url, api_key="k") as c:
            assert (await c.jobs.submit(prompt="Hello", model="template")).id == "j42"
        async with AsyncClient(pages.url, api_key="k") as c:
            assert [j.id async for j in c.jobs.list(state="queued", limit=2)] == ["a", "b", "c", "d", "e"]
        async with AsyncClient(events.url, api_key="k") as c:
            assert (await c.jobs.wait("j1", on_progress=on_progress)).state == JobState.succeeded
        async with AsyncClient(content.url, api_key="k") as c:
            await c.assets.download("a1", tmp_path / "out.mp4")

    asyncio.run(main())
    assert len({r.headers["idempotency-key"] for r in submits.requests}) == 1 and len(submits.requests) == 2
    assert progress == [1, 2, 3]
    assert hashlib.sha256((tmp_path / "out.mp4").read_bytes()).hexdigest() == SHA
    assert "range" in content.requests[1].headers
