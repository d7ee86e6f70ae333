"""FastAPI dependencies as Annotated aliases: the platform, the caller, a session."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from reelfoundry.errors import Unauthenticated
from reelfoundry.governance.roles import Action, check
from reelfoundry.platform import Platform
from reelfoundry.store.keys import Principal, authenticate
from reelfoundry.store.pagination import MAX_LIMIT


def get_platform(request: Request) -> Platform:
    """The Platform built at start-up."""
    platform: Platform = request.app.state.platform
    return platform


PlatformDep = Annotated[Platform, Depends(get_platform)]


def get_principal(request: Request, platform: PlatformDep) -> Principal:
    """Authenticate ``Authorization: Bearer <key>``."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("missing 'Authorization: Bearer <api key>' header")
    with platform.db.read() as session:
        return authenticate(session, token.strip())


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def requires(action: Action) -> object:
    """A dependency that checks the caller's role may do ``action``; returns the principal."""

    def _dep(principal: PrincipalDep) -> Principal:
        check(principal.role, action)
        return principal

    return Depends(_dep)


Reader = Annotated[Principal, requires(Action.read)]
Submitter = Annotated[Principal, requires(Action.submit)]
Canceller = Annotated[Principal, requires(Action.cancel)]
KeyAdmin = Annotated[Principal, requires(Action.manage_keys)]

Cursor = Annotated[str | None, Query(max_length=256, description="next_cursor of the previous page.")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size (1–200). Default 50.")]
