"""Content and data-class rules: each denial names its rule; nothing else is refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from reelfoundry.errors import PolicyDenied
from reelfoundry.governance.policy import ContentPolicy
from reelfoundry.portfolio.backends.template import TEMPLATE_CARD
from reelfoundry.routing import RouterState, plan
from reelfoundry.schema import DataClass, ModelCard, VideoRequest

POLICY = ContentPolicy(blocked_terms=("gore", "credit card number"), protected_identities=("Jane Doe",))


def _rule(request: VideoRequest) -> str | None:
    try:
        POLICY.check(request)
    except PolicyDenied as denied:
        return denied.rule
    return None


def test_blocked_terms_match_whole_words_in_any_case() -> None:
    assert _rule(VideoRequest(prompt="GORE everywhere")) == "blocked-term"
    assert _rule(VideoRequest(prompt="a red circle", negative_prompt="no gore")) == "blocked-term"
    assert _rule(VideoRequest(prompt="show the credit  card number")) == "blocked-term"
    assert _rule(VideoRequest(prompt="Gregory's garden")) is None  # "gore" inside a word is not the word


def test_protected_identities_need_a_consent_reference() -> None:
    assert _rule(VideoRequest(prompt="jane doe waves at the camera")) == "protected-identity"
    assert _rule(VideoRequest(prompt="Jane Doe waves", consent_reference="consent/2026/17")) is None
    assert _rule(VideoRequest(prompt="Janet Doerr waves")) is None


def test_confidential_and_restricted_requests_stay_on_self_hosted_models() -> None:
    vendor = {
        **TEMPLATE_CARD.model_dump(mode="json"),
        "id": "vendor-x",
        "backend": "replicate",
        "hosting": {"vendor": "replicate", "region": "us"},
        "price_usd_per_video_second": "0.05",
    }
    del vendor["data_classes"]
    card = ModelCard.model_validate(vendor)
    assert set(card.data_classes) == {DataClass.public, DataClass.internal}
    with pytest.raises(ValidationError, match="may not take"):
        ModelCard.model_validate({**vendor, "data_classes": ["public", "confidential"]})
    portfolio = {"vendor-x": card, "template": TEMPLATE_CARD}
    state = RouterState(vendors=frozenset({"replicate"}))
    for data_class in ("confidential", "restricted"):
        request = VideoRequest.model_validate(
            {"prompt": "x", "model": "vendor-x", "seed": 1, "constraints": {"data_class": data_class}}
        )
        with pytest.raises(PolicyDenied) as denied:
            plan(request, portfolio, state)
        assert denied.value.rule == "data-class"
        assert plan(request.model_copy(update={"model": "template"}), portfolio, state).chosen == "template"
    for data_class in ("public", "internal"):
        request = VideoRequest.model_validate(
            {"prompt": "x", "model": "vendor-x", "seed": 1, "constraints": {"data_class": data_class}}
        )
        assert plan(request, portfolio, state).chosen == "vendor-x"
