"""Liveness and readiness probes."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Header, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from reelfoundry import __version__
from reelfoundry.api.deps import PlatformDep
from reelfoundry.errors import Unauthenticated
from reelfoundry.observability.metrics import CONTENT_TYPE

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    """Always ok while the process runs."""
    return {"status": "ok", "version": __version__}


@router.get("/readyz", summary="Readiness: database reachable, engine running")
def readyz(platform: PlatformDep) -> JSONResponse:
    """503 until the database answers and (if this server runs jobs) the engine loop is alive."""
    checks: dict[str, str] = {}
    try:
        platform.db.ping()
        checks["database"] = "ok"
    except Exception as exc:  # readiness reports, it does not raise
        checks["database"] = f"error: {type(exc).__name__}"
    if platform.runs_jobs:
        checks["engine"] = "ok" if platform.engine is not None and platform.engine.alive else "down"
    if platform.leader is not None:  # a standby scheduler is ready: it takes over when the leader goes
        checks["scheduler"] = "leader" if platform.leader.is_leader else "standby"
    ready = all(v == "ok" for k, v in checks.items() if k != "scheduler")
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics: jobs, queue wait, run time, utilisation, cost, energy, carbon, budgets",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
async def get_metrics(
    platform: PlatformDep, authorization: Annotated[str | None, Header(max_length=500)] = None
) -> Response:
    """Text exposition format 0.0.4 (for Prometheus or any OpenMetrics scraper). With
    ``REELFOUNDRY_METRICS_TOKEN`` set, the scraper sends ``Authorization: Bearer <token>``."""
    token = platform.settings.metrics_token
    if token is not None:
        scheme, _, given = (authorization or "").partition(" ")
        expected = token.get_secret_value()
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
            raise Unauthenticated("GET /metrics needs 'Authorization: Bearer <metrics token>'")
    body = await run_in_threadpool(platform.metrics.render)
    return Response(body, media_type=CONTENT_TYPE)
