"""The Replicate backend: a model on Replicate's HTTP API (https://replicate.com/docs/reference/http).

The protocol, as Replicate documents it:

- **Create** a prediction: ``POST /v1/models/{owner}/{name}/predictions`` with ``{"input": {...}}`` for an
  official model (its latest version), or ``POST /v1/predictions`` with ``{"version": id, "input": {...}}``
  for a pinned version. The answer is the prediction: ``id``, ``status`` and ``urls``.
- **Poll** ``GET /v1/predictions/{id}`` until ``status`` leaves ``starting``/``processing``: ``succeeded``
  (``output`` holds a file URL, or a list of them), ``failed`` (``error`` says why) or ``canceled``.
- **Cancel** with ``POST /v1/predictions/{id}/cancel``.
- The token goes in ``Authorization: Bearer <token>`` (``REELFOUNDRY_REPLICATE_API_TOKEN``); the API origin
  is ``REELFOUNDRY_REPLICATE_BASE_URL``. Poll and cancel URLs are built from that origin and the id, never
  taken from an answer, so the token is only ever sent there.

``Prefer: wait`` (holding the create call open until the prediction finishes) and webhooks are not used:
a worker polls, which keeps cancel and progress working without an inbound endpoint.

Card options (beside ``input``, ``input_map`` and ``output_path``, see :mod:`.vendor`):

``model``
    ``"owner/name"``: run the model's current version.
``version``
    A version id (``"owner/name:<id>"`` or the bare id): run exactly that version. One of the two is required.

Default ``input_map``: ``prompt``, ``negative_prompt``, ``seed`` and ``image`` under those names; map
``num_frames``, ``fps``, ``width``, ``height`` or ``duration_s`` to the model's own input names where it
takes them. Default ``output_path``: none (the output is the URL, or the first URL of a list).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from reelfoundry.config import Settings
from reelfoundry.errors import BackendError, ConfigurationError
from reelfoundry.portfolio.backends.vendor import Poll, VendorBackend, VendorHTTP, VendorJobEnded, one_line
from reelfoundry.schema import ModelCard

_MODEL = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")
_VERSION = re.compile(r"^(?:[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*:)?[A-Za-z0-9]{8,128}$")


@dataclass(frozen=True)
class Prediction:
    """A prediction the backend created."""

    id: str


class ReplicateBackend(VendorBackend):
    """Runs a Replicate model through predictions (see the module docstring)."""

    name: ClassVar[str] = "replicate"
    vendor: ClassVar[str] = "replicate"
    options: ClassVar[frozenset[str]] = frozenset({"model", "version"})
    default_input_map: ClassVar[dict[str, str | None]] = {
        "prompt": "prompt",
        "negative_prompt": "negative_prompt",
        "seed": "seed",
        "image": "image",
    }
    key_variable: ClassVar[str] = "REELFOUNDRY_REPLICATE_API_TOKEN"

    def __init__(self, card: ModelCard, settings: Settings | None = None) -> None:
        super().__init__(card, settings)
        model, version = card.options.get("model"), card.options.get("version")
        if (model is None) == (version is None):
            raise ConfigurationError(f"card {card.id!r}: give replicate option 'model' (owner/name) or 'version'")
        if model is not None and not (isinstance(model, str) and _MODEL.match(model)):
            raise ConfigurationError(f"card {card.id!r}: replicate model must be 'owner/name', got {model!r}")
        if version is not None and not (isinstance(version, str) and _VERSION.match(version)):
            raise ConfigurationError(f"card {card.id!r}: replicate version must be a version id, got {version!r}")
        self.model: str | None = model
        self.version: str | None = version

    def base_url(self, settings: Settings) -> str:
        return settings.replicate_base_url

    def api_key(self, settings: Settings) -> str | None:
        token = settings.replicate_api_token
        return token.get_secret_value() if token is not None else None

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    def submit(self, http: VendorHTTP, payload: dict[str, Any]) -> Prediction:
        base = http.config.base_url
        if self.model is not None:
            owner, name = self.model.split("/")
            url = f"{base}/v1/models/{quote(owner)}/{quote(name)}/predictions"
            body: dict[str, Any] = {"input": payload}
        else:
            url = f"{base}/v1/predictions"
            body = {"version": self.version, "input": payload}
        response = http.send("POST", url, body=body, submit=True)
        prediction = _prediction(response)
        if response.status_code >= 400:
            raise BackendError(f"replicate refused the prediction (HTTP {response.status_code}): {_detail(prediction)}")
        ident = prediction.get("id")
        if not isinstance(ident, str) or not re.fullmatch(r"[\w-]{1,128}", ident):
            raise BackendError(
                f"replicate answered the prediction without a usable id: {one_line(repr(prediction), 200)}"
            )
        return Prediction(ident)

    def poll(self, http: VendorHTTP, handle: Prediction) -> Poll:
        response = http.send("GET", f"{http.config.base_url}/v1/predictions/{handle.id}")
        prediction = _prediction(response)
        if response.status_code >= 400:
            raise BackendError(f"replicate prediction {handle.id}: HTTP {response.status_code}: {_detail(prediction)}")
        status = prediction.get("status")
        if status == "succeeded":
            return Poll(done=True, output=prediction.get("output"))
        if status == "failed":
            raise VendorJobEnded(f"replicate prediction {handle.id} failed: {_detail(prediction)}")
        if status in ("canceled", "aborted"):
            raise VendorJobEnded(f"replicate prediction {handle.id} was {status} at replicate")
        # starting, processing, or a status this code does not know yet: keep polling until the deadline.
        return Poll(done=False)

    def cancel(self, http: VendorHTTP, handle: Prediction) -> None:
        http.send("POST", f"{http.config.base_url}/v1/predictions/{handle.id}/cancel")

    def job_id(self, handle: Prediction) -> str:
        return handle.id


def _prediction(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise BackendError(f"replicate answered HTTP {response.status_code} with no JSON") from None
    if not isinstance(body, dict):
        raise BackendError(
            f"replicate answered HTTP {response.status_code} with {type(body).__name__}, not a prediction"
        )
    return body


def _detail(body: dict[str, Any]) -> str:
    for key in ("error", "detail", "title"):
        if body.get(key):
            return one_line(str(body[key]))
    return "no reason given"
