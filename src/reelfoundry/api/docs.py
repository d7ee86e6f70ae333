"""/docs (Swagger UI) and /redoc, with their scripts and styles served from a Python package: no CDN.

The assets come from ``fastapi-offline``'s static folder; the pages are FastAPI's own, under a
Content-Security-Policy that allows this server's assets and the one inline script Swagger UI needs.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from importlib import resources

from fastapi import APIRouter, HTTPException
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response

router = APIRouter(include_in_schema=False)

ASSETS = "/docs/assets"
_FILES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "text/javascript",
    "favicon.png": "image/png",
}
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)


@functools.cache
def _asset(name: str) -> bytes:
    return resources.files("fastapi_offline").joinpath("static", name).read_bytes()


def _page(html: str, csp: str) -> HTMLResponse:
    return HTMLResponse(
        html,
        headers={
            "Content-Security-Policy": csp,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )


@functools.cache
def _swagger() -> tuple[str, str]:
    page = get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="ReelFoundry API",
        swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS}/favicon.png",
        swagger_ui_parameters={"persistAuthorization": False, "tryItOutEnabled": True},
    )
    html = bytes(page.body).decode()
    # Allow exactly the inline script FastAPI writes (by its hash), nothing else inline.
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(m.encode()).digest()).decode() + "'"
        for m in _INLINE_SCRIPT.findall(html)
    )
    csp = (
        f"default-src 'none'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )
    return html, csp


@router.get("/docs")
def swagger_ui() -> HTMLResponse:
    """Swagger UI over /openapi.json ("Authorize" takes an API key)."""
    html, csp = _swagger()
    return _page(html, csp)


@router.get("/redoc")
def redoc() -> HTMLResponse:
    """ReDoc over /openapi.json."""
    page = get_redoc_html(
        openapi_url="/openapi.json",
        title="ReelFoundry API",
        redoc_js_url=f"{ASSETS}/redoc.standalone.js",
        redoc_favicon_url=f"{ASSETS}/favicon.png",
        with_google_fonts=False,
    )
    html = bytes(page.body).decode()
    # ReDoc styles itself inline and renders in a worker made from a blob.
    csp = (
        "default-src 'none'; script-src 'self'; worker-src blob:; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; font-src 'self' data:; frame-ancestors 'none'; base-uri 'none'"
    )
    return _page(html, csp)


@router.get(ASSETS + "/{name}")
def asset(name: str) -> Response:
    """One of the docs' scripts, styles or icon, from the package."""
    if name not in _FILES:
        raise HTTPException(404, "no such docs asset")
    return Response(_asset(name), media_type=_FILES[name], headers={"Cache-Control": "public, max-age=86400"})
