"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from reelfoundry import __version__
from reelfoundry.api.deps import PlatformDep
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
    if platform.settings.worker_slots > 0:
        checks["engine"] = "ok" if platform.engine is not None and platform.engine.alive else "down"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics: jobs, queue wait, run time, utilisation, cost, energy, carbon, budgets",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
async def metrics(platform: PlatformDep) -> Response:
    """Text exposition format 0.0.4 (for Prometheus or any OpenMetrics scraper)."""
    body = await run_in_threadpool(platform.metrics.render)
    return Response(body, media_type=CONTENT_TYPE)
