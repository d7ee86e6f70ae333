"""The review gate's rules, as pure functions: who may decide, and which state changes exist."""

from __future__ import annotations

from reelfoundry.errors import Forbidden, InvalidTransition
from reelfoundry.schema import DECISION_STATE, REVIEW_TRANSITIONS, ReviewDecision, ReviewState


def check_transition(current: ReviewState, target: ReviewState) -> None:
    """Raise InvalidTransition (409) unless the review state machine has ``current → target``."""
    if (current, target) not in REVIEW_TRANSITIONS:
        if current == target:
            raise InvalidTransition(f"asset is already {current.value}", review_state=current.value)
        raise InvalidTransition(
            f"asset is {current.value}; it cannot become {target.value}", review_state=current.value
        )


def decide(
    current: ReviewState,
    decision: ReviewDecision,
    *,
    reviewer_key_id: str,
    created_by: str | None,
    allow_self_approval: bool,
) -> ReviewState:
    """The state a decision moves the asset to, or Forbidden / InvalidTransition.

    The key that submitted a job may reject its asset but not approve it, unless the tenant allows
    self-approval: the human step must be someone else's.
    """
    target = DECISION_STATE[decision]
    check_transition(current, target)
    if decision == ReviewDecision.approve and created_by == reviewer_key_id and not allow_self_approval:
        raise Forbidden(
            "the key that created this asset may not approve it; another reviewer must "
            "(an admin can allow self-approval with PATCH /v1/tenant)"
        )
    return target
