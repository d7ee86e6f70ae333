"""receive_upload: a body streamed to a private temp file, hashed, capped, removed, a bounded number at once."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import stat
from collections.abc import Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI, Request

from reelfoundry.api import problems
from reelfoundry.api.uploads import UploadSlots, receive_upload, upload_slots

LIMIT = 10_000


def upload_app(
    data_dir: Path, slots: int = 1, per_key: int | None = None, timeout_s: float = 60
) -> tuple[FastAPI, list[dict[str, Any]]]:
    """An app with one upload route that reports what it saw of the temp file (and may fail after)."""
    app = FastAPI()
    problems.install(app)
    settings = SimpleNamespace(
        data_dir=data_dir,
        max_concurrent_uploads=slots,
        max_concurrent_uploads_per_key=per_key or slots,
        upload_timeout_s=timeout_s,
    )
    app.state.platform = SimpleNamespace(settings=settings)
    seen: list[dict[str, Any]] = []

    @app.post("/up")
    async def up(request: Request) -> dict[str, Any]:
        key = request.query_params.get("key", "k")
        async with receive_upload(request, limit=LIMIT, key=key, suffix=".mp4") as upload:
            seen.append(
                {
                    "path": upload.path,
                    "mode": stat.S_IMODE(upload.path.stat().st_mode),
                    "dir_mode": stat.S_IMODE(upload.path.parent.stat().st_mode),
                    "content": upload.path.read_bytes(),
                    "in_use": upload_slots(request).in_use,
                }
            )
            if request.query_params.get("fail"):
                raise RuntimeError("the work on the file failed")
            return {"size": upload.size, "sha256": upload.sha256}

    return app, seen


def call(app: FastAPI, messages: Iterable[dict[str, Any]], query: str = "") -> tuple[int, dict[str, str], bytes]:
    """Run one POST /up through the ASGI app with the given receive messages; status, headers, body."""
    queue = list(messages)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "path": "/up",
        "raw_path": b"/up",
        "query_string": query.encode(),
        "headers": [(b"content-type", b"video/mp4")],
        "scheme": "http",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 1234),
        "root_path": "",
    }

    async def run() -> None:
        # An unexpected error is answered (500) and then re-raised by Starlette, as in a server.
        with contextlib.suppress(RuntimeError):
            await app(scope, receive, send)

    asyncio.run(run())
    start = next(m for m in sent if m["type"] == "http.response.start")
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], headers, body


def body(*pieces: bytes) -> list[dict[str, Any]]:
    """The receive messages of a body sent in ``pieces``."""
    pieces = pieces or (b"",)
    return [{"type": "http.request", "body": p, "more_body": i < len(pieces) - 1} for i, p in enumerate(pieces)]


def test_the_body_is_streamed_to_a_private_file_with_its_size_and_digest_and_then_removed(tmp_path: Path) -> None:
    app, seen = upload_app(tmp_path)
    status, _, out = call(app, body(b"a" * 3000, b"b" * 4000, b"c"))
    data = b"a" * 3000 + b"b" * 4000 + b"c"
    assert status == 200, out
    assert json.loads(out) == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (upload,) = seen
    assert upload["content"] == data and upload["path"].suffix == ".mp4"
    assert upload["path"].parent == tmp_path / "tmp"
    assert (upload["mode"], upload["dir_mode"]) == (0o600, 0o700)
    assert upload["in_use"] == 1
    assert not upload["path"].exists()
    assert upload_slots_of(app).in_use == 0


def upload_slots_of(app: FastAPI) -> UploadSlots:
    slots: UploadSlots = app.state.upload_slots
    return slots


def test_an_empty_body_is_an_empty_file(tmp_path: Path) -> None:
    app, seen = upload_app(tmp_path)
    status, _, out = call(app, body())
    assert status == 200 and json.loads(out)["size"] == 0
    assert seen[0]["content"] == b""


def test_a_body_past_the_limit_is_413_and_its_file_is_removed(tmp_path: Path) -> None:
    app, seen = upload_app(tmp_path)
    status, headers, out = call(app, body(b"x" * 6000, b"x" * 6000, b"x" * 6000))
    assert status == 413 and headers["content-type"] == "application/problem+json"
    assert json.loads(out)["type"].endswith("/payload-too-large")
    assert seen == []  # the block never ran
    assert list((tmp_path / "tmp").iterdir()) == []
    assert upload_slots_of(app).in_use == 0


def test_a_client_that_goes_away_leaves_no_file_and_frees_the_slot(tmp_path: Path) -> None:
    app, _ = upload_app(tmp_path)
    status, _, _ = call(app, [*body(b"x" * 100, b"y")[:1], {"type": "http.disconnect"}])
    assert status == 400
    assert list((tmp_path / "tmp").iterdir()) == []
    assert upload_slots_of(app).in_use == 0


def test_an_error_while_the_file_is_worked_on_removes_it(tmp_path: Path) -> None:
    app, seen = upload_app(tmp_path)
    status, _, _ = call(app, body(b"z" * 10), query="fail=1")
    assert status == 500
    assert seen and not seen[0]["path"].exists()
    assert upload_slots_of(app).in_use == 0


def test_when_every_slot_is_taken_the_upload_is_refused_at_once_with_retry_after(tmp_path: Path) -> None:
    app, seen = upload_app(tmp_path, slots=2)
    app.state.upload_slots = slots = UploadSlots(2)
    assert slots.try_acquire("a") is None and slots.try_acquire("b") is None
    assert slots.try_acquire("c") is not None
    status, headers, out = call(app, body(b"q" * 10))
    assert status == 503 and int(headers["retry-after"]) >= 1
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(out)["type"].endswith("/busy") and seen == []
    slots.release("a")
    status, _, _ = call(app, body(b"q" * 10))
    assert status == 200 and slots.in_use == 1


@pytest.mark.parametrize("limit", [1, 3])
def test_the_slots_come_from_the_setting(tmp_path: Path, limit: int) -> None:
    app, _ = upload_app(tmp_path, slots=limit)
    assert call(app, body(b"w"))[0] == 200
    assert upload_slots_of(app).limit == limit


def test_the_first_upload_sweeps_files_left_by_a_crashed_process(tmp_path: Path) -> None:
    (tmp_path / "tmp").mkdir()
    stale = tmp_path / "tmp" / "upload-left-by-a-crash.mp4"
    stale.write_bytes(b"x" * 100)
    app, _ = upload_app(tmp_path)
    assert call(app, body(b"w"))[0] == 200
    assert list((tmp_path / "tmp").iterdir()) == []


def test_one_key_holds_only_its_share_of_the_slots(tmp_path: Path) -> None:
    """A reader key trickling uploads could otherwise take every slot and lock everyone else out."""
    app, _ = upload_app(tmp_path, slots=4, per_key=2)
    app.state.upload_slots = slots = UploadSlots(4, 2)
    assert slots.try_acquire("greedy") is None and slots.try_acquire("greedy") is None
    status, _, out = call(app, body(b"q"), query="key=greedy")
    assert status == 503 and "this API key already has 2 uploads" in json.loads(out)["detail"]
    assert call(app, body(b"q"), query="key=someone-else")[0] == 200


def test_a_body_that_trickles_past_the_timeout_is_cut_off(tmp_path: Path) -> None:
    app, seen = upload_app(tmp_path, timeout_s=0.3)
    pieces = [{"type": "http.request", "body": b"a", "more_body": True}]

    async def trickle() -> dict[str, Any]:
        if pieces:
            return pieces.pop()
        await asyncio.sleep(30)  # the next byte never comes in time
        return {"type": "http.request", "body": b"", "more_body": False}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/up", "headers": [], "query_string": b"", "app": app}
    asyncio.run(app(scope, trickle, send))  # type: ignore[arg-type]
    assert sent[0]["status"] == 408
    assert json.loads(sent[1]["body"])["type"].endswith("/request-timeout")
    assert seen == [] and list((tmp_path / "tmp").iterdir()) == []
    assert upload_slots_of(app).in_use == 0
