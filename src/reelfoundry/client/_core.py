"""What the sync and async clients share: request descriptions, SSE decoding and resumable-download state."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from reelfoundry.client.errors import IntegrityError
from reelfoundry.schema import (
    Asset,
    Budget,
    BudgetCreate,
    Event,
    Job,
    JobState,
    KeyCreated,
    KeyPublic,
    ModelCard,
    Page,
    Publication,
    ReviewDecision,
    ReviewState,
    Role,
    UsageReport,
    VideoRequest,
    WebhookDelivery,
    WebhookSecret,
)
from reelfoundry.schema.dam import Collection
from reelfoundry.schema.finetune import Finetune, FinetuneCreate
from reelfoundry.schema.kpi import Scorecard
from reelfoundry.schema.outcome import Outcome, OutcomeCreate, OutcomeSummary

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

#: Event types after which a job's stream has nothing more to say about its outcome.
FINAL_EVENTS = frozenset({"job.succeeded", "job.failed", "job.cancelled"})
#: The server sends a keep-alive every 15 s; a stream silent for this long is treated as dropped.
STREAM_READ_TIMEOUT_S = 60.0
#: How long ``wait`` keeps reopening a broken event stream (e.g. across a server restart).
RECONNECT_S = 60.0
#: Content types ``POST /v1/verify`` takes, by file suffix.
VERIFY_TYPES = {
    ".mp4": "video/mp4",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
}
CHUNK = 256 * 1024
_SHA256 = re.compile(r'^(?:W/)?"?([0-9a-f]{64})"?$')


def _parser(model: type[M]) -> Callable[[httpx.Response], M]:
    def parse(response: httpx.Response) -> M:
        return model.model_validate_json(response.content)

    return parse


def _json(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    return body


def _seg(value: str) -> str:
    return quote(value, safe="")


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API request and how to read its answer; ``idempotent`` allows retries after a dropped connection."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: Mapping[str, str | int] = field(default_factory=dict)
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    idempotent: bool = True


#: Builds the request for one page from the previous page's ``next_cursor``.
Pager = Callable[[str | None], Call[Page[T]]]


def _pager(path: str, model: type[M], params: Mapping[str, str | int | None]) -> Pager[M]:
    kept = {k: v for k, v in params.items() if v is not None}

    def page(cursor: str | None) -> Call[Page[M]]:
        query = kept | ({"cursor": cursor} if cursor is not None else {})
        return Call("GET", path, _parser(Page[model]), params=query)  # type: ignore[valid-type]

    return page


# --- jobs -------------------------------------------------------------------------------------------------


def submit_job(request: VideoRequest | None, idempotency_key: str | None, fields: Mapping[str, Any]) -> Call[Job]:
    """POST /v1/jobs; a fresh Idempotency-Key when none is given, so a retried submit makes one job."""
    if request is not None and fields:
        raise TypeError("pass either a VideoRequest or its fields as keywords, not both")
    body = request.model_dump(mode="json", exclude_unset=True) if request is not None else to_jsonable_python(fields)
    key = idempotency_key or str(uuid.uuid4())
    return Call("POST", "/v1/jobs", _parser(Job), json=body, headers={"Idempotency-Key": key})


def get_job(job_id: str) -> Call[Job]:
    """GET /v1/jobs/{id}."""
    return Call("GET", f"/v1/jobs/{_seg(job_id)}", _parser(Job))


def list_jobs(state: JobState | str | None, limit: int | None) -> Pager[Job]:
    """GET /v1/jobs, page by page."""
    return _pager("/v1/jobs", Job, {"state": None if state is None else str(state), "limit": limit})


def cancel_job(job_id: str) -> Call[Job]:
    """POST /v1/jobs/{id}/cancel. Not repeated after a dropped connection: a repeat of a cancel that took
    effect answers 409 (already cancelled), which would report a success as a failure."""
    return Call("POST", f"/v1/jobs/{_seg(job_id)}/cancel", _parser(Job), idempotent=False)


def job_events(job_id: str, last_event_id: str | None) -> Call[None]:
    """GET /v1/jobs/{id}/events from after ``last_event_id`` (the response is streamed, not parsed)."""
    headers = {"Accept": "text/event-stream"} | ({"Last-Event-ID": last_event_id} if last_event_id else {})
    return Call("GET", f"/v1/jobs/{_seg(job_id)}/events", lambda _: None, headers=headers)


# --- assets -----------------------------------------------------------------------------------------------


def get_asset(asset_id: str) -> Call[Asset]:
    """GET /v1/assets/{id}."""
    return Call("GET", f"/v1/assets/{_seg(asset_id)}", _parser(Asset))


def list_assets(
    project: str | None, campaign: str | None, review_state: ReviewState | str | None, limit: int | None
) -> Pager[Asset]:
    """GET /v1/assets, page by page."""
    state = None if review_state is None else str(review_state)
    params = {"project": project, "campaign": campaign, "review_state": state, "limit": limit}
    return _pager("/v1/assets", Asset, params)


def asset_content(asset_id: str, headers: Mapping[str, str]) -> Call[None]:
    """GET /v1/assets/{id}/content (streamed)."""
    return Call("GET", f"/v1/assets/{_seg(asset_id)}/content", lambda _: None, headers=headers)


def review_asset(asset_id: str, decision: ReviewDecision | str, comment: str) -> Call[Asset]:
    """POST /v1/assets/{id}/review (a second review is a 409, so a retry cannot double it)."""
    body = {"decision": str(decision), "comment": comment}
    return Call("POST", f"/v1/assets/{_seg(asset_id)}/review", _parser(Asset), json=body, idempotent=False)


def publish_asset(asset_id: str) -> Call[Publication]:
    """POST /v1/assets/{id}/publish (publishing again only hands out a fresh URL)."""
    return Call("POST", f"/v1/assets/{_seg(asset_id)}/publish", _parser(Publication))


def update_asset(asset_id: str, fields: Mapping[str, Any]) -> Call[Asset]:
    """PATCH /v1/assets/{id} (the same body twice leaves the same metadata, so a retry is safe)."""
    return Call("PATCH", f"/v1/assets/{_seg(asset_id)}", _parser(Asset), json=to_jsonable_python(dict(fields)))


def search_assets(q: str | None, mode: str, limit: int | None, filters: Mapping[str, Any]) -> Call[Page[Asset]]:
    """GET /v1/assets with ``q`` and filters: the best matches, one page."""
    params = {"q": q, "mode": mode if q else None, "limit": limit, **filters}
    query = {k: (v.isoformat() if hasattr(v, "isoformat") else str(v)) for k, v in params.items() if v is not None}
    return Call("GET", "/v1/assets", _parser(Page[Asset]), params=query)


# --- collections ------------------------------------------------------------------------------------------


def create_collection(name: str, description: str | None) -> Call[Collection]:
    """POST /v1/collections (a second create of the name is a 409)."""
    body = {"name": name, **({"description": description} if description is not None else {})}
    return Call("POST", "/v1/collections", _parser(Collection), json=body, idempotent=False)


def list_collections(limit: int | None) -> Pager[Collection]:
    """GET /v1/collections, page by page."""
    return _pager("/v1/collections", Collection, {"limit": limit})


def get_collection(collection_id: str) -> Call[Collection]:
    """GET /v1/collections/{id}."""
    return Call("GET", f"/v1/collections/{_seg(collection_id)}", _parser(Collection))


def add_to_collection(collection_id: str, asset_ids: Sequence[str]) -> Call[Collection]:
    """POST /v1/collections/{id}/assets (adding an asset twice keeps it once, so a retry is safe)."""
    body = {"asset_ids": list(asset_ids)}
    return Call("POST", f"/v1/collections/{_seg(collection_id)}/assets", _parser(Collection), json=body)


def remove_from_collection(collection_id: str, asset_id: str) -> Call[Collection]:
    """DELETE /v1/collections/{id}/assets/{asset_id}."""
    path = f"/v1/collections/{_seg(collection_id)}/assets/{_seg(asset_id)}"
    return Call("DELETE", path, _parser(Collection))


def delete_collection(collection_id: str) -> Call[None]:
    """DELETE /v1/collections/{id} (204)."""
    return Call("DELETE", f"/v1/collections/{_seg(collection_id)}", lambda _: None)


def create_finetune(body: FinetuneCreate) -> Call[Finetune]:
    """POST /v1/finetunes (not retried: a second one with the name is a 409)."""
    return Call("POST", "/v1/finetunes", _parser(Finetune), json=body.model_dump(mode="json"), idempotent=False)


def list_finetunes(limit: int | None) -> Pager[Finetune]:
    """GET /v1/finetunes, page by page."""
    return _pager("/v1/finetunes", Finetune, {"limit": limit})


def get_finetune(finetune_id: str) -> Call[Finetune]:
    """GET /v1/finetunes/{id}."""
    return Call("GET", f"/v1/finetunes/{_seg(finetune_id)}", _parser(Finetune))


def cancel_finetune(finetune_id: str) -> Call[Finetune]:
    """POST /v1/finetunes/{id}/cancel."""
    return Call("POST", f"/v1/finetunes/{_seg(finetune_id)}/cancel", _parser(Finetune))


def verify(path: Path) -> Call[dict[str, Any]]:
    """POST /v1/verify for the file at ``path`` (the body itself is streamed by the caller)."""
    media_type = VERIFY_TYPES.get(path.suffix.lower())
    if media_type is None:
        raise ValueError(f"cannot verify {path.name}: the suffix must be one of {', '.join(VERIFY_TYPES)}")
    headers = {"Content-Type": media_type, "Content-Length": str(path.stat().st_size)}
    return Call("POST", "/v1/verify", _json, headers=headers)


# --- keys, budgets, usage, models, webhooks -----------------------------------------------------------------


def create_key(name: str, role: Role | str, tenant: str | None) -> Call[KeyCreated]:
    """POST /v1/keys (not retried after a dropped connection: it could make two keys)."""
    body = {"name": name, "role": str(role)} | ({"tenant": tenant} if tenant is not None else {})
    return Call("POST", "/v1/keys", _parser(KeyCreated), json=body, idempotent=False)


def list_keys(limit: int | None) -> Pager[KeyPublic]:
    """GET /v1/keys, page by page."""
    return _pager("/v1/keys", KeyPublic, {"limit": limit})


def revoke_key(key_id: str) -> Call[KeyPublic]:
    """DELETE /v1/keys/{id}."""
    return Call("DELETE", f"/v1/keys/{_seg(key_id)}", _parser(KeyPublic))


def create_budget(budget: BudgetCreate | None, fields: Mapping[str, Any]) -> Call[Budget]:
    """POST /v1/budgets (not retried after a dropped connection: it could make two budgets)."""
    if budget is not None and fields:
        raise TypeError("pass either a BudgetCreate or its fields as keywords, not both")
    body = budget.model_dump(mode="json", exclude_unset=True) if budget is not None else to_jsonable_python(fields)
    return Call("POST", "/v1/budgets", _parser(Budget), json=body, idempotent=False)


def list_budgets(limit: int | None) -> Pager[Budget]:
    """GET /v1/budgets, page by page."""
    return _pager("/v1/budgets", Budget, {"limit": limit})


def get_budget(budget_id: str) -> Call[Budget]:
    """GET /v1/budgets/{id}."""
    return Call("GET", f"/v1/budgets/{_seg(budget_id)}", _parser(Budget))


def delete_budget(budget_id: str) -> Call[Budget]:
    """DELETE /v1/budgets/{id} (not repeated after a dropped connection: a repeat would answer 404)."""
    return Call("DELETE", f"/v1/budgets/{_seg(budget_id)}", _parser(Budget), idempotent=False)


def _window(from_: str | None, to: str | None, all_tenants: bool) -> dict[str, str | int]:
    params: dict[str, str | int] = {}
    if from_ is not None:
        params["from"] = from_
    if to is not None:
        params["to"] = to
    if all_tenants:
        params["all_tenants"] = "true"
    return params


def kpi(from_: str | None, to: str | None, all_tenants: bool) -> Call[Scorecard]:
    """GET /v1/kpi."""
    return Call("GET", "/v1/kpi", _parser(Scorecard), params=_window(from_, to, all_tenants))


def create_outcome(body: OutcomeCreate) -> Call[Outcome]:
    """POST /v1/outcomes (not retried: a second post counts twice)."""
    return Call("POST", "/v1/outcomes", _parser(Outcome), json=body.model_dump(mode="json"), idempotent=False)


def list_outcomes(
    asset_id: str | None, campaign: str | None, from_: str | None, to: str | None, limit: int | None
) -> Pager[Outcome]:
    """GET /v1/outcomes, page by page."""
    params = {"asset": asset_id, "campaign": campaign, "from": from_, "to": to, "limit": limit}
    return _pager("/v1/outcomes", Outcome, params)


def outcome_summary(
    campaign: str | None, from_: str | None, to: str | None, all_tenants: bool, asset_id: str | None = None
) -> Call[OutcomeSummary]:
    """GET /v1/outcomes/summary."""
    params = _window(from_, to, all_tenants)
    if campaign is not None:
        params["campaign"] = campaign
    if asset_id is not None:
        params["asset"] = asset_id
    return Call("GET", "/v1/outcomes/summary", _parser(OutcomeSummary), params=params)


def usage(by: str | Sequence[str] | None, from_: str | None, to: str | None, all_tenants: bool) -> Call[UsageReport]:
    """GET /v1/usage as JSON."""
    params = _window(from_, to, all_tenants)
    if by is not None:
        params["by"] = by if isinstance(by, str) else ",".join(by)
    return Call("GET", "/v1/usage", _parser(UsageReport), params=params)


def list_models(limit: int | None) -> Pager[ModelCard]:
    """GET /v1/models, page by page."""
    return _pager("/v1/models", ModelCard, {"limit": limit})


def get_model(model_id: str) -> Call[ModelCard]:
    """GET /v1/models/{id}."""
    return Call("GET", f"/v1/models/{_seg(model_id)}", _parser(ModelCard))


def add_model(card: ModelCard) -> Call[ModelCard]:
    """POST /v1/models (a repeat after a dropped connection answers 409, so it is not retried)."""
    return Call("POST", "/v1/models", _parser(ModelCard), json=card.model_dump(mode="json"), idempotent=False)


def delete_model(model_id: str) -> Call[ModelCard]:
    """DELETE /v1/models/{id} (not repeated after a dropped connection: a repeat would answer 404)."""
    return Call("DELETE", f"/v1/models/{_seg(model_id)}", _parser(ModelCard), idempotent=False)


def webhook_deliveries(limit: int | None) -> Pager[WebhookDelivery]:
    """GET /v1/webhooks/deliveries, page by page."""
    return _pager("/v1/webhooks/deliveries", WebhookDelivery, {"limit": limit})


def webhook_secret() -> Call[WebhookSecret]:
    """GET /v1/webhooks/secret."""
    return Call("GET", "/v1/webhooks/secret", _parser(WebhookSecret))


def rotate_webhook_secret(grace_s: float | None) -> Call[WebhookSecret]:
    """POST /v1/webhooks/secret/rotate (not retried after a dropped connection: it would rotate twice)."""
    body = {"grace_s": grace_s} if grace_s is not None else None
    return Call("POST", "/v1/webhooks/secret/rotate", _parser(WebhookSecret), json=body, idempotent=False)


# --- streams ---------------------------------------------------------------------------------------------


class EventDecoder:
    """Turns Server-Sent Events lines into :class:`Event` objects.

    ``last_id`` is the id of the last event dispatched (for ``Last-Event-ID`` on reconnect) and ``retry_s``
    the reconnection delay the server asked for.
    """

    def __init__(self) -> None:
        self.last_id: str | None = None
        self.retry_s = 1.0
        self._id: str | None = None
        self._data: list[str] = []

    def reconnected(self) -> None:
        """Forget an event cut off by a dropped stream (the server sends it again after ``last_id``)."""
        self._id, self._data = None, []

    def feed(self, line: str) -> Event | None:
        """Take one line (without its newline); the event when the line completes one."""
        if not line:
            data, self._data = self._data, []
            if not data:
                return None
            event = Event.model_validate_json("\n".join(data))
            self.last_id = self._id if self._id is not None else str(event.id)
            return event
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isdigit():
            self.retry_s = int(value) / 1000
        return None


class PartialDownload:
    """A download into a temp file next to ``target``, resumable with Range, checked against the ETag.

    The server's ETag of an asset's content is its quoted SHA-256: ``finish`` compares the file's digest with
    it (and the size with the announced one) before renaming the temp file onto ``target``.
    """

    def __init__(self, target: Path) -> None:
        self.target = target
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        self._fh = os.fdopen(fd, "wb")
        self.part = Path(name)
        self._sha = hashlib.sha256()
        self.written = 0
        self._etag: str | None = None
        self._total: int | None = None

    def request_headers(self) -> dict[str, str]:
        """Range (and If-Range) to ask for the rest, once some bytes are here."""
        if not self.written or self._etag is None:
            return {}
        return {"Range": f"bytes={self.written}-", "If-Range": self._etag}

    def begin(self, response: httpx.Response) -> bool:
        """Take a successful response's headers; False if it cannot continue this file (start again)."""
        etag = response.headers.get("etag")
        if response.status_code == 206:
            match = re.fullmatch(r"bytes (\d+)-\d+/(\d+)", response.headers.get("content-range", ""))
            if match is None or int(match.group(1)) != self.written or etag != self._etag:
                self._restart(None, None)
                return False
            self._total = int(match.group(2))
            return True
        length = response.headers.get("content-length")
        self._restart(etag, int(length) if length and length.isdigit() else None)
        return True

    def write(self, chunk: bytes) -> None:
        """Append body bytes."""
        self._fh.write(chunk)
        self._sha.update(chunk)
        self.written += len(chunk)

    def finish(self) -> Path:
        """Check size and digest, then move the file into place; IntegrityError if they differ."""
        self._fh.close()
        if self._total is not None and self.written != self._total:
            raise IntegrityError(f"{self.target.name}: got {self.written} bytes, the server announced {self._total}")
        match = _SHA256.match(self._etag or "")
        if match is not None and self._sha.hexdigest() != match.group(1):
            raise IntegrityError(f"{self.target.name}: SHA-256 {self._sha.hexdigest()} differs from the ETag")
        self.part.replace(self.target)
        return self.target

    def discard(self) -> None:
        """Close and remove the temp file (nothing left behind after a failure; a no-op after finish)."""
        self._fh.close()
        self.part.unlink(missing_ok=True)

    def _restart(self, etag: str | None, total: int | None) -> None:
        self._fh.seek(0)
        self._fh.truncate()
        self._sha = hashlib.sha256()
        self.written = 0
        self._etag, self._total = etag, total
