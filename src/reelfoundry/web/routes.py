"""/ui/: sign in with an API key; the review queue with a player, provenance and approve/reject forms, search
(words or meaning), collections, and the KPI scorecard with its trend charts (SVG drawn here).

Plain server-rendered HTML and one stylesheet served from here; no scripts, nothing from another host.
Every action goes through the same functions as the API (``reelfoundry.publishing``), so the rules
(roles, self-approval, state machine) and the audit log are the same whichever way a person decides.
Every page and file checks the same role ``Action`` as the equivalent API route, and files sent from here
are charged as egress like the API's downloads.
"""

from __future__ import annotations

import functools
import re
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

import jinja2
from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from reelfoundry import __version__, publishing
from reelfoundry.api.deps import PlatformDep
from reelfoundry.api.files import original_response, poster_response
from reelfoundry.assets.objectstore import StorageUnavailable
from reelfoundry.errors import NotFound, RateLimited, ReelFoundryError, Unauthenticated
from reelfoundry.finops import usage as usagereport
from reelfoundry.finops.meter import significant
from reelfoundry.governance.roles import ALLOWED, Action
from reelfoundry.ids import is_id
from reelfoundry.kpi import charts as kpicharts
from reelfoundry.kpi import scorecard
from reelfoundry.kpi.scorecard import daily_trends
from reelfoundry.localfiles import temp_dir
from reelfoundry.platform import Platform
from reelfoundry.provenance.manifest import GENERATION_LABEL, verify
from reelfoundry.schema import ReviewCreate, ReviewDecision, ReviewState, Scorecard
from reelfoundry.schema.dam import CollectionCreate, SearchMode
from reelfoundry.server_secret import derive
from reelfoundry.store import assets as assetstore
from reelfoundry.store import audit
from reelfoundry.store import collections as collectionstore
from reelfoundry.store import costs as coststore
from reelfoundry.store import keys as keystore
from reelfoundry.store.keys import Principal
from reelfoundry.store.tables import AssetRow, CostRecordRow, JobRow, utcnow
from reelfoundry.web.session import COOKIE, LOGIN_COOKIE, SESSION_S, SessionSigner

router = APIRouter(prefix="/ui", include_in_schema=False)

PAGE_SIZE = 12
_LABEL = re.compile(r"^[\x20-\x7e]{1,128}$")
_HEADERS = {
    # Nothing but this server: no scripts at all, styles and media from here only.
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; media-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_STATES = [s.value for s in ReviewState]


@functools.cache
def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("reelfoundry.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.globals["version"] = __version__
    return env


def _page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = _templates().get_template(name).render(**context)
    return HTMLResponse(html, status_code=status, headers=_HEADERS)


def _signer(platform: Platform) -> SessionSigner:
    return SessionSigner(derive(platform.secret, "ui-session"))


def _session(platform: Platform, request: Request) -> tuple[Principal, str] | None:
    """The signed-in principal and the cookie value, or None."""
    value = request.cookies.get(COOKIE)
    token = SessionSigner.parse(value) if value else None
    if token is None or value is None:
        return None
    with platform.db.read() as session:
        found = keystore.principal_by_id(session, token.key_id)
    if found is None or not _signer(platform).valid(token, found[1]):
        return None
    return found[0], value


def _not_for_ui(principal: Principal) -> str:
    return f"This key's role ({principal.role.value}) may not use the review UI."


def _reader(platform: Platform, request: Request) -> tuple[Principal, str] | Response:
    """The signed-in principal and cookie when its role may read (what every page and file needs, as
    ``Action.read`` on the API); else the sign-in redirect, or a 403 page for a session made before its
    role was refused here."""
    found = _session(platform, request)
    if found is None:
        return _to_login(request)
    if found[0].role not in ALLOWED[Action.read]:
        return _error(403, _not_for_ui(found[0]), "/ui/login", "Sign in with another key")
    try:
        # The UI reads with the key's own allowance, so a session is no way around the API's rate limit.
        platform.rate_limits.hit(found[0].key_id, "read")
    except RateLimited as limited:
        page = _error(429, limited.detail, request.url.path, "Try again")
        page.headers.update(limited.headers())
        return page
    return found


def _safe_next(target: str | None) -> str:
    """Where to go after a form: only back into the UI (never another host)."""
    if target and target.startswith("/ui/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ui/"


def _to_login(request: Request) -> RedirectResponse:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse("/ui/login?" + urlencode({"next": here}), status_code=303)


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form body as single values."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return {}
    parsed = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[0] for k, v in parsed.items()}


@router.get("")
def ui_root() -> RedirectResponse:
    """``/ui`` → ``/ui/``."""
    return RedirectResponse("/ui/", status_code=308)


@router.get("/app.css")
def stylesheet() -> Response:
    """The one stylesheet."""
    css = resources.files("reelfoundry.web").joinpath("templates/app.css").read_text()
    return Response(css, media_type="text/css", headers={"Cache-Control": "public, max-age=3600"})


@router.get("/login")
def login_page(
    request: Request,
    platform: PlatformDep,
    next_: Annotated[str | None, Query(alias="next", max_length=2000)] = None,
) -> HTMLResponse:
    """The sign-in form (with a token that ties the post to this form: no signing someone in from elsewhere)."""
    return _login_form(platform, request, _safe_next(next_), None, 200)


def _login_form(platform: Platform, request: Request, target: str, error: str | None, status: int) -> HTMLResponse:
    nonce = secrets.token_urlsafe(24)
    page = _page("login.html", status, next=target, error=error, csrf=_signer(platform).csrf(f"login:{nonce}"))
    page.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=3600,
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=_secure(platform, request),
    )
    return page


@router.post("/login")
async def login(request: Request, platform: PlatformDep) -> Response:
    """Check the API key; on success set the session cookie and go on."""
    form = await _form(request)
    target = _safe_next(form.get("next"))
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    if not nonce or not _signer(platform).csrf_ok(f"login:{nonce}", form.get("csrf")):
        return _login_form(platform, request, target, "This sign-in form has expired; please try again.", 403)
    token = form.get("api_key", "").strip()
    try:
        principal = await run_in_threadpool(_check_key, platform, token)
    except Unauthenticated:
        return _login_form(platform, request, target, "That API key is not valid (or was revoked).", 401)
    if principal.role not in ALLOWED[Action.read]:
        # No session at all for a key that may not read: everything behind the sign-in is reading.
        return _login_form(platform, request, target, _not_for_ui(principal), 403)
    with platform.db.read() as session:
        found = keystore.principal_by_id(session, principal.key_id)
    assert found is not None
    response = RedirectResponse(target, status_code=303)
    response.delete_cookie(LOGIN_COOKIE, path="/ui")
    response.set_cookie(
        COOKIE,
        _signer(platform).issue(principal.key_id, found[1]),
        max_age=SESSION_S,
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=_secure(platform, request),
    )
    return response


def _secure(platform: Platform, request: Request) -> bool:
    """Mark the cookie Secure when the UI is reached over HTTPS, directly or behind a TLS proxy."""
    settings = platform.settings
    public = (settings.public_base_url or "").startswith("https://")
    return request.url.scheme == "https" or public or settings.environment == "production"


def _check_key(platform: Platform, token: str) -> Principal:
    if not token:
        raise Unauthenticated("no API key given")
    with platform.db.read() as session:
        return keystore.authenticate(session, token)


@router.post("/logout")
async def logout(request: Request, platform: PlatformDep) -> Response:
    """End the session."""
    form = await _form(request)
    found = _session(platform, request)
    if found is not None and _signer(platform).csrf_ok(found[1], form.get("csrf")):
        response = RedirectResponse("/ui/login", status_code=303)
        response.delete_cookie(COOKIE, path="/ui")
        return response
    return _to_login(request)


@dataclass(frozen=True)
class Card:
    """One asset as the queue shows it."""

    asset: Any
    prompt: str | None
    model: str | None
    cost: str | None
    provenance: dict[str, Any]


#: Provenance summaries by (content digest, trust anchor): a stored file is read and verified once, not per page.
_SUMMARIES: OrderedDict[tuple[str, bytes | None], dict[str, Any]] = OrderedDict()
_SUMMARIES_MAX = 1024
_SUMMARIES_LOCK = threading.Lock()


def _provenance(path: Path, anchor: bytes | None) -> dict[str, Any]:
    """A short provenance summary of one file."""
    report = verify(path, anchor)
    generation: dict[str, Any] = {}
    for manifest in report.manifests:
        generation = manifest.assertions.get(GENERATION_LABEL) or generation
    source = next((a.get("digitalSourceType", "") for a in report.actions if a.get("action") == "c2pa.created"), "")
    return {
        "state": report.validation_state,
        "valid": report.valid,
        "trusted": report.trusted,
        "claim_generator": report.claim_generator,
        "actions": [str(a.get("action", "")).removeprefix("c2pa.") for a in report.actions],
        "source_type": source.rsplit("/", 1)[-1],
        "model": generation.get("model"),
        "model_version": generation.get("model_version"),
    }


def _provenance_missing(state: str = "file missing") -> dict[str, Any]:
    """The summary of a file that is gone from storage, or that storage cannot give now (the card still shows)."""
    return {
        "state": state,
        "valid": False,
        "trusted": False,
        "claim_generator": None,
        "actions": [],
        "source_type": "",
        "model": None,
        "model_version": None,
    }


def _summary(platform: Platform, row: AssetRow, anchor: bytes | None, scratch: Path) -> dict[str, Any]:
    """The provenance summary of an asset's stored file: from the cache when its content was verified before (the
    store is still asked whether the file is there), else verified from a local copy of it."""
    cache_key = (row.sha256, anchor)
    try:
        if platform.storage.stat(row.storage_key) is None:
            return _provenance_missing()
        with _SUMMARIES_LOCK:
            summary = _SUMMARIES.get(cache_key)
            if summary is not None:
                _SUMMARIES.move_to_end(cache_key)
                return summary
        with platform.storage.local_copy(row.storage_key, scratch) as path:
            summary = _provenance(path, anchor)
    except FileNotFoundError:
        return _provenance_missing()
    except StorageUnavailable:  # not cached: the next page load asks the store again
        return _provenance_missing("storage unavailable")
    with _SUMMARIES_LOCK:
        _SUMMARIES[cache_key] = summary
        while len(_SUMMARIES) > _SUMMARIES_MAX:
            _SUMMARIES.popitem(last=False)
    return summary


def _cards(platform: Platform, rows: list[AssetRow]) -> list[Card]:
    anchor = platform.credentials.trust_anchor_pem  # the CA /v1/verify trusts, read once per server
    scratch = temp_dir(platform.settings.data_dir)
    cards = []
    job_ids = [r.job_id for r in rows if r.job_id]
    with platform.db.read() as session:
        jobs = {j.id: j for j in session.query(JobRow).filter(JobRow.id.in_(job_ids))}
        costs = coststore.costs_of(session, job_ids)
    for row in rows:
        job = jobs.get(row.job_id) if row.job_id else None
        summary = _summary(platform, row, anchor, scratch)
        cards.append(
            Card(
                asset=assetstore.to_asset(row),
                prompt=job.request.get("prompt") if job else None,
                model=job.model if job else None,
                cost=_cost_line(costs.get(row.job_id)) if row.job_id else None,
                provenance=summary,
            )
        )
    return cards


def _cost_line(record: CostRecordRow | None) -> str | None:
    """ "$0.000288 · 0.0548 Wh · 0.0264 g CO2e" (per video these are small numbers: Wh and grams)."""
    if record is None:
        return None
    wh, grams = record.energy_kwh * 1000, record.co2e_kg * 1000
    return f"${significant(record.total_usd, 3)} · {significant(wh, 3)} Wh · {significant(grams, 3)} g CO2e"


def _label(value: str | None) -> str | None:
    return value if value and _LABEL.match(value) else None


#: The most characters of a search the queue takes (the API's limit).
MAX_QUERY = 500


@router.get("/")
def queue(
    request: Request,
    platform: PlatformDep,
    state: str = "pending_review",
    project: str | None = None,
    campaign: str | None = None,
    cursor: str | None = None,
    reviewed: str | None = None,
    q: str | None = None,
    mode: str = "text",
    collection: str | None = None,
    added_to: str | None = None,
) -> Response:
    """The review queue: pending assets by default, filterable by state, project, campaign and collection, and
    searchable by words or meaning (best matches first, one page)."""
    found = _reader(platform, request)
    if not isinstance(found, tuple):
        return found
    principal, cookie = found
    if state not in (*_STATES, "all"):
        state = "pending_review"
    project, campaign = _label(project), _label(campaign)
    query = " ".join(q.split())[:MAX_QUERY] if q and _LABEL_TEXT.match(q) and q.strip() else None
    search_mode = SearchMode(mode) if mode in {m.value for m in SearchMode} else SearchMode.text
    collection = collection if collection and is_id(collection) else None
    review_state = None if state == "all" else ReviewState(state)
    filters = assetstore.AssetFilters(
        project=project, campaign=campaign, review_state=review_state, collection_id=collection
    )
    nxt = None
    if query is not None:
        with platform.db.write() as session:  # a semantic search may store embeddings it made
            rows = [
                r
                for r, _ in assetstore.search(
                    session, principal.tenant_id, query, filters=filters, mode=search_mode, limit=PAGE_SIZE * 4
                )
            ]
    with platform.db.read() as session:
        if query is None:
            try:
                rows, nxt = assetstore.list_assets(
                    session,
                    principal.tenant_id,
                    cursor=cursor if cursor and len(cursor) <= 256 else None,
                    limit=PAGE_SIZE,
                    filters=filters,
                )
            except ReelFoundryError:
                rows, nxt = [], None  # a stale or hand-made cursor: show the first page's worth of nothing
        projects, campaigns = assetstore.labels_in_use(session, principal.tenant_id)
        collections, _ = collectionstore.list_collections(session, principal.tenant_id, cursor=None, limit=200)
        notice = None
        if reviewed and is_id(reviewed):
            row = session.get(AssetRow, reviewed)
            if row is not None and row.tenant_id == principal.tenant_id:
                notice = f"Asset {row.id} is now {row.review_state.replace('_', ' ')}."
        if _label(added_to):
            notice = f"Added to collection {added_to}."
    chosen = {
        "state": state,
        "project": project,
        "campaign": campaign,
        "collection": collection,
        "q": query,
        "mode": search_mode.value if query else None,
    }
    here = "/ui/?" + urlencode({k: v for k, v in chosen.items() if v})
    return _page(
        "queue.html",
        principal=principal,
        can_review=principal.role in ALLOWED[Action.review],
        can_publish=principal.role in ALLOWED[Action.publish],
        can_edit=principal.role in ALLOWED[Action.submit],
        csrf=_signer(platform).csrf(cookie),
        cards=_cards(platform, rows),
        state=state,
        states=_STATES,
        project=project,
        campaign=campaign,
        projects=projects,
        campaigns=campaigns,
        q=query or "",
        mode=search_mode.value,
        collection=collection,
        collections=[(c.id, c.name) for c in collections],
        here=here,
        next_page=here + "&" + urlencode({"cursor": nxt}) if nxt else None,
        notice=notice,
    )


#: What a search box may hold: printable text (no control characters).
_LABEL_TEXT = re.compile(r"^[^\x00-\x1f\x7f]{1,2000}$")


@router.get("/collections")
def collections_page(request: Request, platform: PlatformDep, created: str | None = None) -> Response:
    """The tenant's collections, each linking to its assets in the queue; a form to make one."""
    found = _reader(platform, request)
    if not isinstance(found, tuple):
        return found
    principal, cookie = found
    with platform.db.read() as session:
        rows, _ = collectionstore.list_collections(session, principal.tenant_id, cursor=None, limit=200)
        counts = collectionstore.counts(session, [r.id for r in rows])
        items = [collectionstore.to_collection(r, counts.get(r.id, 0)) for r in rows]
    notice = next((f"Collection {c.name} created." for c in items if c.id == created), None)
    return _page(
        "collections.html",
        principal=principal,
        csrf=_signer(platform).csrf(cookie),
        can_edit=principal.role in ALLOWED[Action.submit],
        collections=items,
        notice=notice,
    )


@router.post("/collections")
async def create_collection(request: Request, platform: PlatformDep) -> Response:
    """Make a collection from the form; back to the collections page."""
    post = await _post(platform, request, Action.submit)
    if not isinstance(post, _Post):
        return post
    back = "/ui/collections"
    try:
        body = CollectionCreate(
            name=post.form.get("name", "").strip(), description=post.form.get("description") or None
        )
    except ValueError:
        return _error(400, "A collection needs a name of 1–128 printable characters.", back, "Back to collections")

    def create() -> str:
        with platform.db.write() as session:
            row = collectionstore.create_collection(
                session, post.principal.tenant_id, body, post.principal.key_id, utcnow()
            )
            audit.append_by(session, post.principal, "collection.created", subject=row.id, data={"name": row.name})
            return row.id

    try:
        created = await run_in_threadpool(create)
    except ReelFoundryError as exc:
        return _error(exc.status, exc.detail, back, "Back to collections")
    return RedirectResponse(f"{back}?{urlencode({'created': created})}", status_code=303)


@router.post("/collections/{collection_id}/assets")
async def add_to_collection(collection_id: str, request: Request, platform: PlatformDep) -> Response:
    """Add the form's asset to a collection; back to where the form was."""
    post = await _post(platform, request, Action.submit)
    if not isinstance(post, _Post):
        return post
    asset_id = post.form.get("asset_id", "")

    def add() -> str:
        with platform.db.write() as session:
            row = collectionstore.get_collection(session, post.principal.tenant_id, collection_id)
            added = collectionstore.add_assets(session, row, [asset_id], post.principal.key_id, utcnow())
            if added:
                audit.append_by(
                    session, post.principal, "collection.assets_added", subject=row.id, data={"asset_ids": added}
                )
            return row.name

    try:
        name = await run_in_threadpool(add)
    except ReelFoundryError as exc:
        return _error(exc.status, exc.detail, post.back)
    sep = "&" if "?" in post.back else "?"
    return RedirectResponse(f"{post.back}{sep}{urlencode({'added_to': name})}", status_code=303)


def _error(status: int, message: str, back: str = "/ui/", back_label: str = "Back to the queue") -> HTMLResponse:
    return _page("error.html", status, message=message, back=back, back_label=back_label)


@dataclass(frozen=True)
class _Post:
    """A checked form post of a signed-in person: who, the fields, and where to go back to."""

    principal: Principal
    form: dict[str, str]
    back: str


async def _post(platform: Platform, request: Request, action: Action) -> _Post | Response:
    """The session, the form and its CSRF token checked, the role allowed ``action``; else the page to show."""
    # Off the event loop: the session look-up reads the database and the rate limit may ask Redis.
    found = await run_in_threadpool(_reader, platform, request)
    if not isinstance(found, tuple):
        return found
    principal, cookie = found
    form = await _form(request)
    back = _safe_next(form.get("next"))
    if not _signer(platform).csrf_ok(cookie, form.get("csrf")):
        return _error(403, "This form has expired; reload the page and try again.", back)
    if principal.role not in ALLOWED[action]:
        verb = action.value.replace("_", " ")
        return _error(403, f"Your key's role ({principal.role.value}) may not {verb}.", back)
    return _Post(principal, form, back)


@router.post("/assets/{asset_id}/review")
async def review(asset_id: str, request: Request, platform: PlatformDep) -> Response:
    """Approve or reject from the queue; back to the queue with a notice."""
    post = await _post(platform, request, Action.review)
    if not isinstance(post, _Post):
        return post
    if post.form.get("decision") not in {d.value for d in ReviewDecision}:
        return _error(400, "Choose approve or reject.", post.back)
    comment = post.form.get("comment", "")
    if len(comment) > 4000:
        return _error(400, "The comment is longer than 4000 characters.", post.back)
    body = ReviewCreate(decision=ReviewDecision(post.form["decision"]), comment=comment)
    try:
        await run_in_threadpool(publishing.review_asset, platform, post.principal, asset_id, body)
    except ReelFoundryError as exc:
        return _error(exc.status, exc.detail, post.back)
    sep = "&" if "?" in post.back else "?"
    return RedirectResponse(f"{post.back}{sep}{urlencode({'reviewed': asset_id})}", status_code=303)


@router.post("/assets/{asset_id}/publish")
async def publish(asset_id: str, request: Request, platform: PlatformDep) -> Response:
    """Publish an approved asset and show its delivery URL."""
    post = await _post(platform, request, Action.publish)
    if not isinstance(post, _Post):
        return post
    try:
        pub = await run_in_threadpool(publishing.publish_asset, platform, post.principal, asset_id)
    except ReelFoundryError as exc:
        return _error(exc.status, exc.detail, post.back)
    return _page("published.html", publication=pub, back=post.back)


def _own_asset(platform: Platform, request: Request, asset_id: str) -> AssetRow | Response:
    """The tenant's asset for a signed-in reader; else the 403 page (401 problem when not signed in)."""
    found = _reader(platform, request)
    if isinstance(found, RedirectResponse):
        raise Unauthenticated("sign in at /ui/login")  # a media element cannot follow a sign-in redirect
    if not isinstance(found, tuple):
        return found
    with platform.db.read() as session:
        return assetstore.get_asset(session, found[0].tenant_id, asset_id)


@router.get("/assets/{asset_id}/content")
def content(
    asset_id: str,
    request: Request,
    platform: PlatformDep,
    range_: Annotated[str | None, Header(alias="range", max_length=200)] = None,
    if_none_match: Annotated[str | None, Header(max_length=200)] = None,
) -> Response:
    """The original file for the player (signed-in readers of the tenant; Range for seeking).

    The bytes sent are charged to the job's egress, as GET /v1/assets/{id}/content charges them.
    """
    row = _own_asset(platform, request, asset_id)
    if not isinstance(row, AssetRow):
        return row
    return original_response(
        platform.storage,
        row,
        range_=range_,
        if_none_match=if_none_match,
        on_sent=platform.egress_meter(row.job_id),
    )


@router.get("/assets/{asset_id}/poster")
def poster(asset_id: str, request: Request, platform: PlatformDep) -> Response:
    """The poster still of a video (signed-in readers of the tenant)."""
    row = _own_asset(platform, request, asset_id)
    if not isinstance(row, AssetRow):
        return row
    return poster_response(platform.storage, row)


# -- the KPI scorecard ---------------------------------------------------------------------------------------------

#: The scorecard's figures as the page shows them: (field, label).
_KPIS = (
    ("gpu_utilization", "GPU utilisation"),
    ("queue_wait_s", "Queue wait (p50)"),
    ("cost_per_inference_usd", "Cost per inference"),
    ("innovation_velocity", "Innovation velocity"),
    ("model_agility", "Model agility"),
    ("data_asset_leverage", "Data asset leverage"),
    ("cost_per_business_outcome_usd", "Cost per business outcome"),
    ("approval_rate", "Approval rate"),
    ("energy_kwh_per_video", "Energy per video"),
    ("co2e_kg_per_video", "CO2e per video"),
)


def _window(from_: str | None, to: str | None) -> tuple[Any, Any, str | None]:
    """The window of the page's form, or (None, None, the problem) for dates that do not parse."""
    try:
        start, end = usagereport.parse_when("from", from_, end=False), usagereport.parse_when("to", to, end=True)
    except ReelFoundryError as exc:
        return None, None, exc.detail
    if start is not None and end is not None and start >= end:
        return None, None, "to must be after from"
    return start, end, None


def _shown(value: Any, unit: str) -> str:
    """A figure for people: ratios as percentages, small units scaled, four significant figures."""
    if value is None:
        return "n/a"
    from decimal import Decimal

    number = Decimal(str(value))
    if unit == "ratio":
        return f"{significant(number * 100, 4)} %"
    if unit == "USD":
        return f"${significant(number, 4)}"
    if unit == "kWh":
        return f"{significant(number * 1000, 4)} Wh"
    if unit == "kg CO2e":
        return f"{significant(number * 1000, 4)} g CO2e"
    return f"{significant(number, 4)} {unit}"


def _figures(card: Scorecard) -> list[dict[str, Any]]:
    figures = []
    for field, label in _KPIS:
        figure = getattr(card, field)
        extra = None
        if field == "queue_wait_s" and figure.available:
            extra = f"p95 {figure.p95_s} s"
        elif field == "cost_per_inference_usd" and figure.per_succeeded_video_usd is not None:
            extra = f"{_shown(figure.per_succeeded_video_usd, 'USD')} per succeeded video"
        elif field == "gpu_utilization" and figure.devices:
            extra = "device class: " + ", ".join(d.device for d in figure.devices)
        elif field in ("innovation_velocity", "model_agility") and figure.pending:
            extra = f"{figure.pending} pending"
        figures.append(
            {
                "field": field,
                "label": label,
                "value": _shown(figure.value, figure.unit),
                "available": figure.available,
                "n": figure.n,
                "extra": extra,
                "reason": figure.reason,
                "definition": figure.definition,
                "provenance": figure.provenance,
            }
        )
    return figures


@router.get("/kpi")
def kpi_page(
    request: Request,
    platform: PlatformDep,
    from_: Annotated[str | None, Query(alias="from", max_length=40)] = None,
    to: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    """The tenant's KPI scorecard over a window, with its trend charts (readers of the tenant, as /v1/kpi)."""
    found = _reader(platform, request)
    if not isinstance(found, tuple):
        return found
    principal, cookie = found
    start, end, problem = _window(from_, to)
    with platform.db.read() as session:
        card = scorecard(session, principal.tenant_id, start, end, utcnow())
    query = "" if problem else urlencode({k: v for k, v in {"from": from_, "to": to}.items() if v})
    figures = _figures(card)
    return _page(
        "kpi.html",
        principal=principal,
        csrf=_signer(platform).csrf(cookie),
        figures=figures,
        any_data=any(f["available"] for f in figures),
        charts=[(name, spec.title) for name, spec in kpicharts.CHARTS.items()],
        query=f"?{query}" if query else "",
        start=from_ if not problem and from_ else "",
        end=to if not problem and to else "",
        problem=problem,
        generated_at=card.generated_at,
    )


@router.get("/kpi/charts/{name}.svg")
def kpi_chart(
    name: str,
    request: Request,
    platform: PlatformDep,
    from_: Annotated[str | None, Query(alias="from", max_length=40)] = None,
    to: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    """One trend chart of the tenant's scorecard as SVG (no scripts in it: matplotlib draws paths and text)."""
    if name not in kpicharts.CHARTS:
        raise NotFound(f"no chart named {name[:64]!r}")
    found = _reader(platform, request)
    if isinstance(found, RedirectResponse):
        raise Unauthenticated("sign in at /ui/login")  # an image cannot follow a sign-in redirect
    if not isinstance(found, tuple):
        return found
    start, end, _ = _window(from_, to)
    with platform.db.read() as session:  # the trends alone: five of these load with every view of the page
        series = daily_trends(session, found[0].tenant_id, start, end)
    return Response(kpicharts.chart(series, name, "svg"), media_type="image/svg+xml", headers=_HEADERS)
