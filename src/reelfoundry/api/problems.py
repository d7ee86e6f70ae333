"""One place that turns every error into an RFC 9457 problem+json response."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from reelfoundry.errors import PROBLEM_BASE, ReelFoundryError

log = logging.getLogger(__name__)
MEDIA_TYPE = "application/problem+json"


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    """A problem+json response with the body's status."""
    return JSONResponse(body, status_code=body["status"], media_type=MEDIA_TYPE, headers=headers)


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(ReelFoundryError)
    async def _domain(request: Request, exc: ReelFoundryError) -> JSONResponse:
        return problem_response(exc.to_problem(instance=request.url.path), exc.headers() or None)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "parameter": "body" if e.get("type") == "json_invalid" else _location(tuple(e.get("loc", ()))),
                "detail": str(e.get("msg", ""))[:300],
            }
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"parameter": "body", "detail": "invalid request"}
        body = {
            "type": PROBLEM_BASE + "validation",
            "title": "Invalid request",
            "status": 422,
            "detail": f"{first['parameter']}: {first['detail']}",
            "instance": request.url.path,
            "parameter": first["parameter"],
            "errors": errors,
        }
        return problem_response(body)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug = {404: "not-found", 405: "method-not-allowed", 413: "payload-too-large"}.get(exc.status_code, "http")
        body = {
            "type": PROBLEM_BASE + slug,
            "title": str(exc.detail) if exc.status_code != 404 else "Not found",
            "status": exc.status_code,
            "detail": str(exc.detail),
            "instance": request.url.path,
        }
        return problem_response(body, dict(exc.headers) if exc.headers else None)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        body = {
            "type": PROBLEM_BASE + "internal",
            "title": "Internal error",
            "status": 500,
            "detail": "the server hit an unexpected error; it has been logged",
            "instance": request.url.path,
        }
        return problem_response(body)
