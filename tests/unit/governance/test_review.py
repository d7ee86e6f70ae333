"""The review state machine and who may decide, as pure rules."""

from __future__ import annotations

import itertools

import pytest

from reelfoundry.errors import Forbidden, InvalidTransition
from reelfoundry.governance.review import check_transition, decide
from reelfoundry.governance.roles import ALLOWED, Action
from reelfoundry.schema import REVIEW_TRANSITIONS, ReviewDecision, ReviewState, Role

S = ReviewState


@pytest.mark.parametrize(("current", "target"), list(itertools.product(S, S)))
def test_only_the_documented_transitions_exist(current: ReviewState, target: ReviewState) -> None:
    allowed = {(S.pending_review, S.approved), (S.pending_review, S.rejected), (S.approved, S.published)}
    if (current, target) in allowed:
        check_transition(current, target)
    else:
        with pytest.raises(InvalidTransition):
            check_transition(current, target)
    assert allowed == REVIEW_TRANSITIONS


def test_decisions_move_pending_assets_only() -> None:
    kw = {"reviewer_key_id": "R", "created_by": "C", "allow_self_approval": False}
    assert decide(S.pending_review, ReviewDecision.approve, **kw) == S.approved
    assert decide(S.pending_review, ReviewDecision.reject, **kw) == S.rejected
    for state in (S.approved, S.rejected, S.published):
        for decision in ReviewDecision:
            with pytest.raises(InvalidTransition):
                decide(state, decision, **kw)


def test_the_creating_key_may_reject_but_not_approve_unless_allowed() -> None:
    with pytest.raises(Forbidden, match="may not approve"):
        decide(S.pending_review, ReviewDecision.approve, reviewer_key_id="K", created_by="K", allow_self_approval=False)
    own = {"reviewer_key_id": "K", "created_by": "K"}
    assert decide(S.pending_review, ReviewDecision.reject, allow_self_approval=False, **own) == S.rejected
    assert decide(S.pending_review, ReviewDecision.approve, allow_self_approval=True, **own) == S.approved
    # An asset from before keys were recorded (created_by None) is nobody's own.
    assert (
        decide(
            S.pending_review, ReviewDecision.approve, reviewer_key_id="K", created_by=None, allow_self_approval=False
        )
        == S.approved
    )


def test_only_reviewers_and_admins_review_and_viewers_never_publish() -> None:
    assert ALLOWED[Action.review] == {Role.admin, Role.reviewer}
    assert Role.viewer not in ALLOWED[Action.publish] and Role.worker not in ALLOWED[Action.publish]
    assert ALLOWED[Action.manage_tenant] == {Role.admin}
