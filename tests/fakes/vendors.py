"""Local stand-ins for Replicate's prediction API and fal.ai's queue API, on 127.0.0.1.

The vendors' clouds cannot be reached from the tests, so these speak the documented protocols (paths,
methods, auth headers, statuses, answer shapes) closely enough for the backends to run against them, and
misbehave on request: a 429 with Retry-After, 5xx answers, a stalled answer, a job that takes K polls,
fails, or is cancelled. Each serves its output file itself (``/files/<id>.mp4``).

Faults are queued per kind of request ("submit", "poll", "result", "cancel", "output"): each queued
fault answers one request of that kind, in order, before the fake behaves normally again.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from reelfoundry.media import encode_mp4


def tiny_mp4(path: Path, frames: int = 12, fps: int = 8, size: int = 32) -> bytes:
    """A real H.264 MP4 of ``frames`` moving-gradient frames (``frames / fps`` seconds); its bytes."""
    ramp = np.linspace(0, 255, size, dtype=np.uint8)
    video = [np.stack([np.roll(ramp, i)[None, :].repeat(size, 0)] * 3, axis=-1) for i in range(frames)]
    encode_mp4(video, fps, path)
    return path.read_bytes()


@dataclass
class Fault:
    """One misbehaving answer: a status (with Retry-After), or a stall before the normal answer."""

    status: int | None = None
    retry_after: str | None = None
    stall_s: float = 0.0


@dataclass
class Seen:
    """A request the fake received."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Job:
    """A job the fake holds."""

    id: str
    input: dict[str, Any]
    polls: int = 0
    cancelled: bool = False


@dataclass
class FakeVendor:
    """State and knobs shared by both fakes."""

    output: bytes
    key: str
    #: Polls a job answers "still running" before it is done.
    polls_before_done: int = 2
    #: When set, jobs fail with this error message.
    fail_with: str | None = None
    #: When set, the output URL handed out (instead of this fake's own).
    output_url: str | None = None
    #: Send the output in chunks without a Content-Length (so only counting what arrives can cap it).
    chunked: bool = False
    faults: dict[str, list[Fault]] = field(default_factory=lambda: defaultdict(list))
    seen: list[Seen] = field(default_factory=list)
    jobs: dict[str, Job] = field(default_factory=dict)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fault(
        self,
        kind: str,
        status: int | None = None,
        *,
        times: int = 1,
        retry_after: str | None = None,
        stall_s: float = 0.0,
    ) -> None:
        """Answer the next ``times`` requests of ``kind`` with ``status`` (or stall them ``stall_s`` first)."""
        self.faults[kind].extend(Fault(status, retry_after, stall_s) for _ in range(times))

    def of(self, kind: str) -> list[Seen]:
        """The requests of one kind received so far."""
        return [s for s in self.seen if _kind(s) == kind]

    async def _intake(self, request: Request, kind: str, auth: str) -> Response | None:
        body: Any = None
        raw = await request.body()
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw
        self.seen.append(Seen(request.method, request.url.path, dict(request.headers), body))
        self.seen[-1].headers["x-kind"] = kind
        if kind != "output" and request.headers.get("authorization") != f"{auth} {self.key}":
            return JSONResponse({"detail": "Unauthenticated"}, status_code=401)
        queue = self.faults.get(kind)
        if queue:
            fault = queue.pop(0)
            if fault.stall_s:
                await asyncio.sleep(fault.stall_s)
            if fault.status is not None:
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                return JSONResponse({"detail": f"fault {fault.status}"}, status_code=fault.status, headers=headers)
        return None

    def _new_job(self, body: dict[str, Any]) -> Job:
        job = Job(uuid.uuid4().hex[:16], body)
        self.jobs[job.id] = job
        return job

    def _advance(self, job: Job) -> str:
        """running, succeeded, failed or cancelled, after one more poll."""
        if job.cancelled:
            return "cancelled"
        job.polls += 1
        if job.polls <= self.polls_before_done:
            return "running"
        return "failed" if self.fail_with else "succeeded"

    def _output_url(self, job: Job) -> str:
        return self.output_url or f"{self.url}/files/{job.id}.mp4"

    async def _file(self, request: Request) -> Response:
        refused = await self._intake(request, "output", "")
        if refused is not None:
            return refused
        if self.chunked:

            async def pieces() -> AsyncIterator[bytes]:
                for start in range(0, len(self.output), 512):
                    yield self.output[start : start + 512]

            return StreamingResponse(pieces(), media_type="video/mp4")
        return Response(self.output, media_type="video/mp4")


def _kind(seen: Seen) -> str:
    return seen.headers.get("x-kind", "")


class FakeReplicate(FakeVendor):
    """Replicate's HTTP API: predictions created, polled, cancelled; ``Authorization: Bearer <token>``."""

    def app(self) -> Starlette:
        async def create_for_model(request: Request) -> Response:
            return await self._create(request)

        async def create(request: Request) -> Response:
            return await self._create(request)

        async def get(request: Request) -> Response:
            refused = await self._intake(request, "poll", "Bearer")
            if refused is not None:
                return refused
            job = self.jobs.get(request.path_params["id"])
            if job is None:
                return JSONResponse({"detail": "Not found."}, status_code=404)
            state = self._advance(job)
            status = {"running": "processing", "cancelled": "canceled"}.get(state, state)
            return JSONResponse(self._prediction(job, status))

        async def cancel(request: Request) -> Response:
            refused = await self._intake(request, "cancel", "Bearer")
            if refused is not None:
                return refused
            job = self.jobs.get(request.path_params["id"])
            if job is None:
                return JSONResponse({"detail": "Not found."}, status_code=404)
            job.cancelled = True
            return JSONResponse(self._prediction(job, "canceled"))

        return Starlette(
            routes=[
                Route("/v1/models/{owner}/{name}/predictions", create_for_model, methods=["POST"]),
                Route("/v1/predictions", create, methods=["POST"]),
                Route("/v1/predictions/{id}", get, methods=["GET"]),
                Route("/v1/predictions/{id}/cancel", cancel, methods=["POST"]),
                Route("/files/{name}", self._file, methods=["GET"]),
            ]
        )

    async def _create(self, request: Request) -> Response:
        refused = await self._intake(request, "submit", "Bearer")
        if refused is not None:
            return refused
        body = self.seen[-1].body
        if not isinstance(body, dict) or not isinstance(body.get("input"), dict):
            return JSONResponse({"detail": "input is required"}, status_code=422)
        job = self._new_job(body)
        return JSONResponse(self._prediction(job, "starting"), status_code=201)

    def _prediction(self, job: Job, status: str) -> dict[str, Any]:
        return {
            "id": job.id,
            "model": "owner/model",
            "version": "v1",
            "input": job.input.get("input"),
            "status": status,
            "output": [self._output_url(job)] if status == "succeeded" else None,
            "error": self.fail_with if status == "failed" else None,
            "logs": "",
            "metrics": {},
            "urls": {
                "get": f"{self.url}/v1/predictions/{job.id}",
                "cancel": f"{self.url}/v1/predictions/{job.id}/cancel",
            },
        }


class FakeFal(FakeVendor):
    """fal.ai's queue API: submit, status, result, cancel; ``Authorization: Key <key>``."""

    def app(self) -> Starlette:
        async def submit(request: Request) -> Response:
            refused = await self._intake(request, "submit", "Key")
            if refused is not None:
                return refused
            body = self.seen[-1].body
            if not isinstance(body, dict):
                return JSONResponse({"detail": "a JSON object is required"}, status_code=422)
            job = self._new_job({"app": request.path_params["app"], "input": body})
            root = f"{self.url}/{self._app_root(job)}/requests/{job.id}"
            return JSONResponse(
                {
                    "request_id": job.id,
                    "status_url": f"{root}/status",
                    "response_url": root,
                    "cancel_url": f"{root}/cancel",
                    "queue_position": 0,
                }
            )

        async def status(request: Request) -> Response:
            refused = await self._intake(request, "poll", "Key")
            if refused is not None:
                return refused
            job = self._job(request)
            if job is None:
                return JSONResponse({"detail": "Request not found"}, status_code=404)
            state = self._advance(job)
            if state == "running":
                answer = {"status": "IN_QUEUE" if job.polls == 1 else "IN_PROGRESS", "queue_position": 0}
                return JSONResponse(answer, status_code=202)
            answer = {"status": "COMPLETED", "response_url": f"{self.url}{request.url.path.rsplit('/', 1)[0]}"}
            if state == "cancelled":
                answer["error"] = "Request cancelled"
            return JSONResponse(answer)

        async def result(request: Request) -> Response:
            refused = await self._intake(request, "result", "Key")
            if refused is not None:
                return refused
            job = self._job(request)
            if job is None:
                return JSONResponse({"detail": "Request not found"}, status_code=404)
            if self.fail_with:
                return JSONResponse({"detail": self.fail_with}, status_code=422)
            url = self._output_url(job)
            return JSONResponse({"video": {"url": url, "content_type": "video/mp4"}, "seed": 7})

        async def cancel(request: Request) -> Response:
            refused = await self._intake(request, "cancel", "Key")
            if refused is not None:
                return refused
            job = self._job(request)
            if job is None:
                return JSONResponse({"status": "NOT_FOUND"}, status_code=404)
            job.cancelled = True
            return JSONResponse({"status": "CANCELLATION_REQUESTED"}, status_code=202)

        base = "/{owner}/{name}/requests/{id}"
        return Starlette(
            routes=[
                Route("/files/{file}", self._file, methods=["GET"]),
                Route(f"{base}/status", status, methods=["GET"]),
                Route(f"{base}/cancel", cancel, methods=["PUT"]),
                Route(base, result, methods=["GET"]),
                Route("/{app:path}", submit, methods=["POST"]),
            ]
        )

    def _app_root(self, job: Job) -> str:
        # Status, result and cancel name the app without its endpoint sub-path, as fal's queue does.
        return "/".join(str(job.input["app"]).split("/")[:2])

    def _job(self, request: Request) -> Job | None:
        job = self.jobs.get(request.path_params["id"])
        owner_name = f"{request.path_params['owner']}/{request.path_params['name']}"
        if job is None or self._app_root(job) != owner_name:
            return None
        return job


class Running:
    """A fake served by uvicorn on a thread, on 127.0.0.1 and a free port."""

    def __init__(self, fake: FakeVendor) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            fake.port = int(s.getsockname()[1])
        self.fake = fake
        assert isinstance(fake, FakeReplicate | FakeFal)
        config = uvicorn.Config(
            fake.app(),
            host="127.0.0.1",
            port=fake.port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="fake-vendor", daemon=True)

    def __enter__(self) -> FakeVendor:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the fake vendor did not start")
            time.sleep(0.01)
        return self.fake

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
