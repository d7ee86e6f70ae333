"""The FastAPI application: routers, error handling, body limits and lifecycle."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reelfoundry import __version__
from reelfoundry.api import docs, openapi, problems
from reelfoundry.api.ratelimit import RateLimitHeaders
from reelfoundry.api.routes import (
    assets,
    budgets,
    collections,
    delivery,
    finetunes,
    health,
    jobs,
    keys,
    kpi,
    models,
    outcomes,
    provenance,
    schemas,
    tenant,
    usage,
    webhooks,
)
from reelfoundry.config import Settings
from reelfoundry.errors import PayloadTooLarge
from reelfoundry.platform import Platform
from reelfoundry.web import routes as web


class BodyLimit:
    """Refuse request bodies over the limit (declared or streamed) with a 413 problem.

    ``uploads`` maps (method, path) to a larger limit for the endpoints that take files.
    """

    def __init__(self, app: ASGIApp, limit: int, uploads: dict[tuple[str, str], int]) -> None:
        self.app = app
        self.limit = limit
        self.uploads = uploads

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.uploads.get((scope["method"], scope["path"].rstrip("/")), self.limit)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, send, limit)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                # FastAPI turns other errors raised while reading the body into a 400; HTTPException passes.
                raise HTTPException(413, f"request body exceeds {limit} bytes")
            return message

        await self.app(scope, limited, send)

    async def _refuse(self, scope: Scope, send: Send, limit: int) -> None:
        body = PayloadTooLarge(f"request body exceeds {limit} bytes").to_problem(scope.get("path"))
        response = problems.problem_response(body)
        await response(scope, _empty, send)


async def _empty() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def create_app(settings: Settings | None = None, platform: Platform | None = None, role: str = "all") -> FastAPI:
    """Build the app. It starts the platform (of ``role``) unless one (already started) is given, and stops it on
    shutdown.

    Stopping happens in the lifespan because uvicorn re-raises SIGTERM after its shutdown,
    so code after ``uvicorn.run`` may never run.
    """
    settings = settings or Settings()
    plat = platform or Platform(settings, role)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if platform is None:
            plat.start()
        try:
            yield
        finally:
            plat.stop()

    app = FastAPI(
        title="ReelFoundry",
        version=__version__,
        summary="Self-hosted generative video: one canonical job schema, priced, signed and reviewed.",
        lifespan=lifespan,
        # FastAPI's own /docs and /redoc pages load their scripts from a CDN: ours serve them from a package.
        docs_url=None,
        redoc_url=None,
        separate_input_output_schemas=False,
        generate_unique_id_function=openapi.operation_id,
    )
    app.state.platform = plat
    problems.install(app)
    app.include_router(health.router)
    if not plat.serves_api:  # scheduler and worker processes answer probes and scrapes only
        return app
    v1 = APIRouter(prefix="/v1")
    for module in (jobs, assets, collections, finetunes, models, keys, schemas, webhooks, provenance, tenant, delivery):
        v1.include_router(module.router)
    for module in (budgets, usage, outcomes):
        v1.include_router(module.router)
    v1.include_router(kpi.router)
    v1.include_router(assets.webhook_router)
    app.include_router(v1)
    app.include_router(web.router)
    app.include_router(docs.router)
    openapi.install(app)
    app.add_middleware(RateLimitHeaders)
    app.add_middleware(
        BodyLimit,
        limit=settings.max_body_bytes,
        uploads={
            ("POST", "/v1/assets"): max(settings.max_upload_bytes, settings.max_video_upload_bytes),
            ("POST", "/v1/verify"): settings.max_verify_bytes,
        },
    )
    return app


def api_worker_app() -> FastAPI:
    """One process of ``serve --role api --workers N`` (a uvicorn factory): settings from the environment,
    which ``serve`` filled in; each process builds and starts its own platform."""
    return create_app(Settings(), role="api")
