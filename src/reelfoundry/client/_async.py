"""The asynchronous client: :class:`AsyncClient` and its resource namespaces (the same surface as ``Client``)."""

from __future__ import annotations

import builtins
import inspect
import os
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from contextlib import aclosing
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import anyio
import httpx

from reelfoundry import __version__
from reelfoundry.client import _core
from reelfoundry.client._core import CHUNK, RECONNECT_S, STREAM_READ_TIMEOUT_S, Call, Pager
from reelfoundry.client.errors import ApiError, IntegrityError, NetworkError
from reelfoundry.client.retry import RetryPolicy
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


class AsyncClient:
    """A ReelFoundry API client (asynchronous), over one ``httpx.AsyncClient``; use it in ``async with``.

    ``api_key`` defaults to ``$REELFOUNDRY_API_KEY``. ``timeout`` (seconds) applies to each request; event
    streams wait up to 60 s for a byte. 429 and 503 answers, and connections that fail, are retried up to
    ``max_retries`` times (see :mod:`reelfoundry.client.retry`). ``transport`` replaces httpx's network
    transport (e.g. ``httpx.MockTransport`` in tests).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 3,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        key = api_key if api_key is not None else os.environ.get("REELFOUNDRY_API_KEY")
        headers = {"User-Agent": f"reelfoundry-client/{__version__}"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self.base_url = base_url.rstrip("/")
        self.retry = RetryPolicy(max_retries=max_retries)
        self.timeout = timeout
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=timeout, transport=transport)
        self.jobs = Jobs(self)
        self.assets = Assets(self)
        self.collections = Collections(self)
        self.finetunes = Finetunes(self)
        self.outcomes = Outcomes(self)
        self.keys = Keys(self)
        self.budgets = Budgets(self)
        self.models = Models(self)
        self.webhooks = Webhooks(self)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def usage(
        self,
        by: str | Sequence[str] | None = None,
        from_: str | None = None,
        to: str | None = None,
        *,
        all_tenants: bool = False,
    ) -> UsageReport:
        """Usage and cost grouped ``by`` (e.g. ``"model,day"`` or ``["project"]``) between two dates or times."""
        return await self.call(_core.usage(by, from_, to, all_tenants))

    async def kpi(self, from_: str | None = None, to: str | None = None, *, all_tenants: bool = False) -> Scorecard:
        """The KPI scorecard between two dates or times (the tenant's; every tenant's for operator admins)."""
        return await self.call(_core.kpi(from_, to, all_tenants))

    async def verify(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        """The C2PA verification report of a local file (streamed; its type is chosen by the suffix)."""
        file = Path(path)
        call = _core.verify(file)

        async def body() -> AsyncIterator[bytes]:
            async with await anyio.open_file(file, "rb") as fh:
                while chunk := await fh.read(CHUNK):
                    yield chunk

        return call.parse(await self.send(call, content=body))

    async def call(self, call: Call[T]) -> T:
        """Send ``call`` (with retries) and parse its answer."""
        return call.parse(await self.send(call))

    async def send(
        self,
        call: Call[Any],
        *,
        stream: bool = False,
        content: Callable[[], AsyncIterable[bytes]] | None = None,
        timeout: httpx.Timeout | None = None,
    ) -> httpx.Response:
        """The successful response to ``call`` after retries; ApiError for an error answer, NetworkError for none.

        ``content`` makes a fresh request body for each attempt. A streamed response must be closed by the caller.
        """
        attempt = 0
        while True:
            attempt += 1
            request = self._http.build_request(
                call.method,
                call.path,
                params=call.params,
                json=call.json,
                headers=call.headers,
                content=content() if content is not None else None,
                timeout=timeout if timeout is not None else self.timeout,
            )
            try:
                response = await self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                delay = self.retry.error_delay(attempt, exc, call.idempotent)
                if delay is None:
                    raise NetworkError(f"{call.method} {self.base_url}{call.path} failed: {exc!r}", attempt) from exc
                await anyio.sleep(delay)
                continue
            if response.is_success:
                return response
            try:
                await response.aread()
            finally:
                await response.aclose()
            delay = self.retry.status_delay(attempt, response)
            if delay is None:
                raise ApiError.from_response(response)
            await anyio.sleep(delay)

    async def paginate(self, pager: Pager[T]) -> AsyncIterator[T]:
        """Every item of a list, fetching the next page as the iteration reaches it."""
        cursor: str | None = None
        while True:
            page = await self.call(pager(cursor))
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor


class Jobs:
    """``/v1/jobs``: submit, read, list, cancel and wait for jobs."""

    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def submit(
        self, request: VideoRequest | None = None, /, *, idempotency_key: str | None = None, **fields: Any
    ) -> Job:
        """Queue a job from a VideoRequest or its fields (``prompt=..., model=...``); returns the Job.

        Without ``idempotency_key`` a random one is sent, so a retried submission never makes two jobs.
        """
        return await self._c.call(_core.submit_job(request, idempotency_key, fields))

    async def get(self, job_id: str) -> Job:
        """One job."""
        return await self._c.call(_core.get_job(job_id))

    def list(self, state: JobState | str | None = None, limit: int | None = None) -> AsyncIterator[Job]:
        """Every job (newest first), optionally in one state; ``limit`` is the page size."""
        return self._c.paginate(_core.list_jobs(state, limit))

    async def cancel(self, job_id: str) -> Job:
        """Ask for a job to be cancelled (a running one stops at its next step)."""
        return await self._c.call(_core.cancel_job(job_id))

    async def wait(
        self, job_id: str, on_progress: Callable[[Event], object] | None = None, timeout: float | None = None
    ) -> Job:
        """Follow the job's event stream until it ends; returns the final Job.

        ``on_progress`` gets every Event (it may be a coroutine function). A dropped stream is reopened with
        ``Last-Event-ID`` (up to ``max_retries`` times in a row without an event). TimeoutError after
        ``timeout`` seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        decoder = _core.EventDecoder()
        broken_since: float | None = None
        while True:
            remaining = STREAM_READ_TIMEOUT_S if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"job {job_id} did not finish within {timeout} s")
            limits = httpx.Timeout(self._c.timeout, read=min(remaining, STREAM_READ_TIMEOUT_S))
            try:
                async with aclosing(
                    await self._c.send(_core.job_events(job_id, decoder.last_id), stream=True, timeout=limits)
                ) as r:
                    async for line in r.aiter_lines():
                        event = decoder.feed(line)
                        if event is None:
                            continue
                        broken_since = None
                        if on_progress is not None and inspect.isawaitable(result := on_progress(event)):
                            await result
                        if event.type in _core.FINAL_EVENTS:
                            return await self.get(job_id)
            except (httpx.TransportError, NetworkError) as exc:
                decoder.reconnected()
                now = time.monotonic()
                broken_since = now if broken_since is None else broken_since
                if now - broken_since > RECONNECT_S:
                    raise NetworkError(f"the event stream of job {job_id} kept breaking: {exc!r}", 1) from exc
            else:  # the server ends a stream once the job is final; check in case the final event came earlier
                job = await self.get(job_id)
                if job.state.final:
                    return job
            await anyio.sleep(decoder.retry_s)


class Assets:
    """``/v1/assets``: read, list, download, review and publish assets."""

    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def get(self, asset_id: str) -> Asset:
        """One asset's metadata."""
        return await self._c.call(_core.get_asset(asset_id))

    def list(
        self,
        project: str | None = None,
        campaign: str | None = None,
        review_state: ReviewState | str | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[Asset]:
        """Every asset (newest first), optionally filtered; ``limit`` is the page size."""
        return self._c.paginate(_core.list_assets(project, campaign, review_state, limit))

    async def download(self, asset_id: str, path: str | os.PathLike[str]) -> Path:
        """Save the asset's content at ``path``; returns it.

        The bytes go to a temp file next to ``path``, renamed into place once their SHA-256 matches the ETag
        (IntegrityError if not). A dropped connection resumes with ``Range`` where it stopped.
        """
        part = _core.PartialDownload(Path(path))
        failures = 0
        try:
            while True:
                async with aclosing(
                    await self._c.send(_core.asset_content(asset_id, part.request_headers()), stream=True)
                ) as response:
                    start = part.written
                    try:
                        if part.begin(response):
                            async for chunk in response.aiter_bytes():
                                part.write(chunk)
                            return part.finish()
                        error: Exception = IntegrityError(f"asset {asset_id} changed while downloading")
                    except httpx.TransportError as exc:
                        error = exc
                failures = 0 if part.written > start else failures + 1
                if failures > self._c.retry.max_retries:
                    raise NetworkError(f"download of asset {asset_id} kept breaking: {error!r}", failures) from error
                await anyio.sleep(self._c.retry.backoff(failures + 1))
        finally:
            part.discard()

    async def review(self, asset_id: str, decision: ReviewDecision | str, comment: str = "") -> Asset:
        """Approve or reject an asset (reviewer or admin key)."""
        return await self._c.call(_core.review_asset(asset_id, decision, comment))

    async def publish(self, asset_id: str) -> Publication:
        """Publish an approved asset; the Publication has its signed delivery URL."""
        return await self._c.call(_core.publish_asset(asset_id))

    async def update(self, asset_id: str, **fields: Any) -> Asset:
        """Edit an asset's metadata (title, description, tags, brand, licence, consent_ref, rights_expires_at,
        usage_restrictions, accept_suggestions); a field given as None is cleared. Audited by the server."""
        return await self._c.call(_core.update_asset(asset_id, fields))

    async def search(
        self, q: str | None = None, *, mode: str = "text", limit: int | None = None, **filters: Any
    ) -> builtins.list[Asset]:
        """The best matches of ``q`` (``mode`` text or semantic) among the assets the filters leave (review_state,
        model, brand, tag, collection, origin, project, campaign, created_after, created_before)."""
        page = await self._c.call(_core.search_assets(q, mode, limit, filters))
        return page.items


class Collections:
    """``/v1/collections``: named sets of the tenant's assets."""

    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def create(self, name: str, description: str | None = None) -> Collection:
        """A new, empty collection."""
        return await self._c.call(_core.create_collection(name, description))

    def list(self, limit: int | None = None) -> AsyncIterator[Collection]:
        """Every collection, newest first; ``limit`` is the page size."""
        return self._c.paginate(_core.list_collections(limit))

    async def get(self, collection_id: str) -> Collection:
        """One collection."""
        return await self._c.call(_core.get_collection(collection_id))

    async def add(self, collection_id: str, asset_ids: Sequence[str]) -> Collection:
        """Add assets (those already in it stay once)."""
        return await self._c.call(_core.add_to_collection(collection_id, asset_ids))

    async def remove(self, collection_id: str, asset_id: str) -> Collection:
        """Take an asset out (the asset stays)."""
        return await self._c.call(_core.remove_from_collection(collection_id, asset_id))

    async def delete(self, collection_id: str) -> None:
        """Delete the collection (its assets stay)."""
        await self._c.call(_core.delete_collection(collection_id))


class Finetunes:
    """``/v1/finetunes``: LoRA fine-tunes of a model on a collection, registered as models (a tenant admin's key)."""

    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def create(self, name: str, collection: str, base: str = "builtin", **params: Any) -> Finetune:
        """Queue a fine-tune of ``base`` on the collection (``rank``, ``steps``, ``lr``, ``seed`` in ``params``)."""
        body = FinetuneCreate(name=name, collection=collection, base=base, **params)
        return await self._c.call(_core.create_finetune(body))

    def list(self, limit: int | None = None) -> AsyncIterator[Finetune]:
        """Every fine-tune, newest first; ``limit`` is the page size."""
        return self._c.paginate(_core.list_finetunes(limit))

    async def get(self, finetune_id: str) -> Finetune:
        """One fine-tune (its state follows its job's; ``job_id`` has the progress and events)."""
        return await self._c.call(_core.get_finetune(finetune_id))

    async def cancel(self, finetune_id: str) -> Finetune:
        """Cancel it: no model is registered."""
        return await self._c.call(_core.cancel_finetune(finetune_id))


class Outcomes:
    """``/v1/outcomes``: what assets and campaigns achieved (creators and admins post; readers read)."""

    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def create(self, body: OutcomeCreate | None = None, /, **fields: Any) -> Outcome:
        """Post an outcome: ``asset_id`` and/or ``campaign``, ``views``, ``clicks``, ``conversions``,
        ``revenue_usd``, ``spend_usd``, ``channel``, ``period_start``, ``period_end``, ``note``."""
        return await self._c.call(_core.create_outcome(body or OutcomeCreate(**fields)))

    def list(
        self,
        asset_id: str | None = None,
        campaign: str | None = None,
        from_: str | None = None,
        to: str | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[Outcome]:
        """The tenant's outcomes, newest first; ``limit`` is the page size."""
        return self._c.paginate(_core.list_outcomes(asset_id, campaign, from_, to, limit))

    async def summary(
        self,
        campaign: str | None = None,
        from_: str | None = None,
        to: str | None = None,
        *,
        asset_id: str | None = None,
        all_tenants: bool = False,
    ) -> OutcomeSummary:
        """Totals of views, clicks, conversions, revenue and spend (of one campaign or asset, if named), overall
        and by campaign."""
        return await self._c.call(_core.outcome_summary(campaign, from_, to, all_tenants, asset_id))


class Keys:
    """``/v1/keys``: API keys of the tenant (admin key)."""

    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def create(self, name: str, role: Role | str, tenant: str | None = None) -> KeyCreated:
        """A new key; its ``secret`` is shown only this once."""
        return await self._c.call(_core.create_key(name, role, tenant))

    def list(self, limit: int | None = None) -> AsyncIterator[KeyPublic]:
        """Every key (without secrets), newest first."""
        return self._c.paginate(_core.list_keys(limit))

    async def revoke(self, key_id: str) -> KeyPublic:
        """Revoke a key; it stops working at once."""
        return await self._c.call(_core.revoke_key(key_id))


class Budgets:
    """``/v1/budgets``: spending limits."""

    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def create(self, budget: BudgetCreate | None = None, /, **fields: Any) -> Budget:
        """A budget from a BudgetCreate or its fields (``name=..., limit_usd=...``)."""
        return await self._c.call(_core.create_budget(budget, fields))

    def list(self, limit: int | None = None) -> AsyncIterator[Budget]:
        """Every budget with what is spent and reserved."""
        return self._c.paginate(_core.list_budgets(limit))

    async def get(self, budget_id: str) -> Budget:
        """One budget."""
        return await self._c.call(_core.get_budget(budget_id))

    async def delete(self, budget_id: str) -> Budget:
        """Remove a budget; returns it as it was."""
        return await self._c.call(_core.delete_budget(budget_id))


class Models:
    """``/v1/models``: the model cards."""

    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    def list(self, limit: int | None = None) -> AsyncIterator[ModelCard]:
        """Every model card, by id."""
        return self._c.paginate(_core.list_models(limit))

    async def get(self, model_id: str) -> ModelCard:
        """One model card."""
        return await self._c.call(_core.get_model(model_id))

    async def add(self, card: ModelCard) -> ModelCard:
        """Add a card to the portfolio (the operator's admin key); live on every server within a second."""
        return await self._c.call(_core.add_model(card))

    async def delete(self, model_id: str) -> ModelCard:
        """Remove a card added with :meth:`add`; returns it as it was. Jobs queued on it still run."""
        return await self._c.call(_core.delete_model(model_id))


class Webhooks:
    """``/v1/webhooks``: the delivery log and the signing secret."""

    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    def deliveries(self, limit: int | None = None) -> AsyncIterator[WebhookDelivery]:
        """Every webhook delivery, newest first."""
        return self._c.paginate(_core.webhook_deliveries(limit))

    async def secret(self) -> WebhookSecret:
        """The signing secret (admin key)."""
        return await self._c.call(_core.webhook_secret())

    async def rotate(self, grace_s: float | None = None) -> WebhookSecret:
        """A new signing secret; the old one keeps signing for ``grace_s`` (default: the server's)."""
        return await self._c.call(_core.rotate_webhook_secret(grace_s))
