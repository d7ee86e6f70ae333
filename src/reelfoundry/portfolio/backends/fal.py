"""The fal backend: a model on fal.ai's queue API (https://docs.fal.ai/model-apis/model-endpoints/queue).

The protocol, as fal documents it:

- **Submit**: ``POST {queue}/{app_id}`` with the model's input as the JSON body. The answer carries
  ``request_id`` and the request's ``status_url``, ``response_url`` and ``cancel_url``.
- **Status**: ``GET {queue}/{owner}/{app}/requests/{request_id}/status``: ``IN_QUEUE`` (with
  ``queue_position``), ``IN_PROGRESS``, then ``COMPLETED`` (with ``error`` set when the request failed).
  The status, result and cancel paths name the app without its endpoint sub-path (``fal-ai/ltx-video``
  for ``fal-ai/ltx-video/image-to-video``), which is why the URLs of the submit answer are used.
- **Result**: ``GET {queue}/{owner}/{app}/requests/{request_id}``: the model's output, e.g.
  ``{"video": {"url": ...}}``; a failed request answers an error status with a ``detail``.
- **Cancel**: ``PUT .../requests/{request_id}/cancel`` (202 ``CANCELLATION_REQUESTED``, or 400
  ``ALREADY_COMPLETED``).
- The key goes in ``Authorization: Key <key>`` (``REELFOUNDRY_FAL_API_KEY``); the queue origin is
  ``REELFOUNDRY_FAL_QUEUE_URL``. A status, result or cancel URL from an answer is used only when it is on
  that origin (otherwise it is built from the origin, the app and the id), so the key is never sent
  anywhere else.

Webhooks (``fal_webhook``) are not used: a worker polls, which keeps cancel and progress working without
an inbound endpoint.

Card options (beside ``input``, ``input_map`` and ``output_path``, see :mod:`.vendor`):

``app``
    The endpoint id, e.g. ``"fal-ai/ltx-video"`` or ``"fal-ai/ltx-video/image-to-video"``. Required.

Default ``input_map``: ``prompt``, ``negative_prompt`` and ``seed`` under those names, ``image`` as
``image_url`` (fal's convention); map ``num_frames``, ``fps``, ``width``, ``height`` or ``duration_s`` where
the model takes them. Default ``output_path``: ``video.url``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

import httpx

from reelfoundry.config import Settings
from reelfoundry.errors import BackendError, ConfigurationError
from reelfoundry.portfolio.backends.vendor import Poll, VendorBackend, VendorHTTP, VendorJobEnded, one_line
from reelfoundry.schema import ModelCard

_APP = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*){1,4}$")


@dataclass(frozen=True)
class Request:
    """A request in fal's queue and where to ask about it."""

    id: str
    status_url: str
    response_url: str
    cancel_url: str


class FalBackend(VendorBackend):
    """Runs a fal model through its queue (see the module docstring)."""

    name: ClassVar[str] = "fal"
    vendor: ClassVar[str] = "fal"
    options: ClassVar[frozenset[str]] = frozenset({"app"})
    default_input_map: ClassVar[dict[str, str | None]] = {
        "prompt": "prompt",
        "negative_prompt": "negative_prompt",
        "seed": "seed",
        "image": "image_url",
    }
    default_output_path: ClassVar[str | None] = "video.url"
    key_variable: ClassVar[str] = "REELFOUNDRY_FAL_API_KEY"

    def __init__(self, card: ModelCard, settings: Settings | None = None) -> None:
        super().__init__(card, settings)
        app = card.options.get("app")
        if not isinstance(app, str) or not _APP.match(app):
            raise ConfigurationError(
                f"card {card.id!r}: fal option 'app' must be an endpoint id such as 'fal-ai/ltx-video'"
            )
        self.app = app

    def base_url(self, settings: Settings) -> str:
        return settings.fal_queue_url

    def api_key(self, settings: Settings) -> str | None:
        key = settings.fal_api_key
        return key.get_secret_value() if key is not None else None

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Key {key}"}

    def submit(self, http: VendorHTTP, payload: dict[str, Any]) -> Request:
        base = http.config.base_url
        response = http.send("POST", f"{base}/{quote(self.app)}", body=payload, submit=True)
        body = _json(response)
        if response.status_code >= 400:
            raise BackendError(f"fal refused the request (HTTP {response.status_code}): {_detail(body)}")
        ident = body.get("request_id")
        if not isinstance(ident, str) or not re.fullmatch(r"[\w-]{1,128}", ident):
            raise BackendError(f"fal answered the submission without a usable request_id: {one_line(repr(body), 200)}")
        # Status, result and cancel live under the app's owner/name, without the endpoint's sub-path.
        root = f"{base}/{quote('/'.join(self.app.split('/')[:2]))}/requests/{ident}"
        return Request(
            id=ident,
            status_url=_same_origin(body.get("status_url"), base) or f"{root}/status",
            response_url=_same_origin(body.get("response_url"), base) or root,
            cancel_url=_same_origin(body.get("cancel_url"), base) or f"{root}/cancel",
        )

    def poll(self, http: VendorHTTP, handle: Request) -> Poll:
        response = http.send("GET", handle.status_url)
        body = _json(response)
        if response.status_code >= 400:
            raise BackendError(f"fal request {handle.id}: status answered HTTP {response.status_code}: {_detail(body)}")
        status = body.get("status")
        if status != "COMPLETED":
            # IN_QUEUE, IN_PROGRESS, or a state this code does not know yet: keep polling until the deadline.
            return Poll(done=False)
        if body.get("error"):
            raise VendorJobEnded(f"fal request {handle.id} failed: {_detail(body)}")
        result = http.send("GET", handle.response_url)
        output = _json(result)
        if result.status_code >= 400:
            raise VendorJobEnded(f"fal request {handle.id} failed (HTTP {result.status_code}): {_detail(output)}")
        return Poll(done=True, output=output)

    def cancel(self, http: VendorHTTP, handle: Request) -> None:
        http.send("PUT", handle.cancel_url)

    def job_id(self, handle: Request) -> str:
        return handle.id


def _same_origin(url: Any, base: str) -> str | None:
    """``url`` if it is an http(s) URL on ``base``'s scheme, host and port; None otherwise."""
    if not isinstance(url, str):
        return None
    try:
        got, want = urlsplit(url), urlsplit(base)
        same = (got.scheme, got.hostname, got.port) == (want.scheme, want.hostname, want.port)
    except ValueError:
        return None
    return url if same and got.scheme in ("http", "https") and not got.username and not got.password else None


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise BackendError(f"fal answered HTTP {response.status_code} with no JSON") from None
    if not isinstance(body, dict):
        raise BackendError(f"fal answered HTTP {response.status_code} with {type(body).__name__}, not an object")
    return body


def _detail(body: dict[str, Any]) -> str:
    for key in ("error", "detail", "message"):
        if body.get(key):
            return one_line(str(body[key]))
    return "no reason given"
