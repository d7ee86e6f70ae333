"""FastAPI dependencies as Annotated aliases: the platform, the caller, a session."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from reelfoundry.api.ratelimit import STATE_KEY
from reelfoundry.errors import Unauthenticated
from reelfoundry.governance.roles import Action, check
from reelfoundry.platform import Platform
from reelfoundry.store.keys import Principal, authenticate
from reelfoundry.store.pagination import MAX_LIMIT

#: Job submissions count against REELFOUNDRY_RATE_LIMIT_SUBMIT; every other authenticated request against _READ.
SUBMIT_PATH = "/v1/jobs"

# Trivial dependencies are ``async def``: FastAPI runs a sync dependency in the thread pool,
# and a thread hop costs more than these functions do.


async def get_platform(request: Request) -> Platform:
    """The Platform built at start-up."""
    platform: Platform = request.app.state.platform
    return platform


PlatformDep = Annotated[Platform, Depends(get_platform)]


#: The API's one security scheme, so OpenAPI (generators, Swagger UI) knows every protected operation needs it.
#: Errors stay ours (a 401 problem), not FastAPI's.
bearer = HTTPBearer(
    auto_error=False,
    scheme_name="apiKey",
    bearerFormat="rf_<id>_<secret>",
    description="An API key, sent as `Authorization: Bearer rf_…`. `reelfoundry serve` writes the first admin key "
    "to `<data-dir>/admin.key`; admins make more with `POST /v1/keys`.",
)


async def get_principal(
    request: Request,
    platform: PlatformDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """Authenticate ``Authorization: Bearer <key>`` (from the short-lived cache when it can)."""
    token = credentials.credentials.strip() if credentials is not None else ""
    if not token:
        raise Unauthenticated("missing 'Authorization: Bearer <api key>' header")
    principal = platform.principals.get(token)
    if principal is None:
        principal = await run_in_threadpool(_authenticate, platform, token)
        platform.principals.put(token, principal)
    kind = "submit" if request.method == "POST" and request.url.path.rstrip("/") == SUBMIT_PATH else "read"
    limiter = platform.rate_limits
    if limiter.remote:  # a round trip to Redis must not block the event loop
        headers = await run_in_threadpool(limiter.hit, principal.key_id, kind)
    else:
        headers = limiter.hit(principal.key_id, kind)
    setattr(request.state, STATE_KEY, headers)
    return principal


def _authenticate(platform: Platform, token: str) -> Principal:
    with platform.db.read() as session:
        return authenticate(session, token)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def requires(action: Action) -> object:
    """A dependency that checks the caller's role may do ``action``; returns the principal."""

    async def _dep(principal: PrincipalDep) -> Principal:
        check(principal.role, action)
        return principal

    return Depends(_dep)


Reader = Annotated[Principal, requires(Action.read)]
Submitter = Annotated[Principal, requires(Action.submit)]
Canceller = Annotated[Principal, requires(Action.cancel)]
KeyAdmin = Annotated[Principal, requires(Action.manage_keys)]
Reviewer = Annotated[Principal, requires(Action.review)]
Publisher = Annotated[Principal, requires(Action.publish)]
TenantAdmin = Annotated[Principal, requires(Action.manage_tenant)]

Cursor = Annotated[str | None, Query(max_length=256, description="next_cursor of the previous page.")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size (1–200). Default 50.")]
