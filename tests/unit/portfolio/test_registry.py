"""Which card a request runs on, and the request checks made against it."""

from __future__ import annotations

from pathlib import Path

import pytest

from reelfoundry.errors import InvalidParameter, UnknownModel
from reelfoundry.portfolio.registry import Portfolio, resolve_params
from reelfoundry.schema import TemplateSpec, VideoRequest

WELCOME = TemplateSpec.model_validate_json((Path(__file__).parents[3] / "examples" / "welcome.json").read_text())


def test_auto_is_the_builtin_model_and_a_template_spec_goes_to_the_template_renderer() -> None:
    portfolio = Portfolio()
    assert portfolio.choose(VideoRequest(prompt="a red circle moving left on a blue background")).id == "builtin"
    assert portfolio.choose(VideoRequest(prompt="x", template=WELCOME)).id == "template"
    assert portfolio.choose(VideoRequest(prompt="x", model="template")).id == "template"
    with pytest.raises(UnknownModel):
        portfolio.choose(VideoRequest(prompt="x", model="nope"))


def test_a_template_spec_for_another_model_is_refused_by_name() -> None:
    portfolio = Portfolio()
    request = VideoRequest(prompt="x", model="builtin", template=WELCOME, seed=1)
    with pytest.raises(InvalidParameter) as err:
        resolve_params(portfolio.choose(request), request)
    assert err.value.parameter == "template" and "builtin" in str(err.value)
