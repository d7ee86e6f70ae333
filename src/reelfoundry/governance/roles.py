"""Which roles may perform which actions. One table, checked in one place."""

from __future__ import annotations

from enum import StrEnum

from reelfoundry.errors import Forbidden
from reelfoundry.schema import Role


class Action(StrEnum):
    """Things a key can ask to do."""

    read = "read"
    submit = "submit"
    cancel = "cancel"
    manage_keys = "manage_keys"
    review = "review"
    publish = "publish"
    manage_tenant = "manage_tenant"


_READERS = frozenset({Role.admin, Role.creator, Role.reviewer, Role.viewer})

ALLOWED: dict[Action, frozenset[Role]] = {
    Action.read: _READERS,
    Action.submit: frozenset({Role.admin, Role.creator}),
    Action.cancel: frozenset({Role.admin, Role.creator}),
    Action.manage_keys: frozenset({Role.admin}),
    Action.review: frozenset({Role.admin, Role.reviewer}),
    Action.publish: frozenset({Role.admin, Role.creator, Role.reviewer}),
    Action.manage_tenant: frozenset({Role.admin}),
}


def check(role: Role, action: Action) -> None:
    """Raise Forbidden unless ``role`` may perform ``action``."""
    if role not in ALLOWED[action]:
        raise Forbidden(f"role {role.value!r} may not {action.value.replace('_', ' ')}")
