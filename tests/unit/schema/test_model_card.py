"""ModelCard refuses what would make a bad route or an unbounded job: the reserved id, limits beyond any request's,
infinite figures, a malformed estimate hint."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from reelfoundry.schema import ModelCard

CARD: dict[str, Any] = {
    "id": "promo",
    "name": "Promo",
    "backend": "template",
    "task": "template",
    "default_num_frames": 24,
    "default_fps": 24,
    "default_width": 320,
    "default_height": 180,
    "max_num_frames": 240,
    "max_width": 1280,
    "max_height": 720,
}


def test_a_plain_card_validates() -> None:
    assert ModelCard.model_validate(CARD).id == "promo"
    assert ModelCard.model_validate({**CARD, "options": {"estimate_s": {"fixed": 1, "per_frame_step": 0.01}}})


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"id": "auto"}, "reserved"),
        ({"default_width": 100_000, "max_width": 100_000}, "default_width"),
        ({"max_num_frames": 10**6}, "max_num_frames"),
        ({"max_height": 4096}, "max_height"),
        ({"default_steps": 10**6}, "default_steps"),
        ({"default_guidance_scale": float("inf")}, "default_guidance_scale"),
        ({"speed": {"cpu": {"s_per_step_mpf": float("inf")}}}, "s_per_step_mpf"),
        ({"resources": {"weights_gib": float("inf")}}, "weights_gib"),
        ({"options": {"estimate_s": {"fixed": "x", "per_frame_step": 1}}}, "estimate_s.fixed"),
        ({"options": {"estimate_s": {"fixed": [1], "per_frame_step": 1}}}, "estimate_s.fixed"),
        ({"options": {"estimate_s": {"fixed": 1, "per_frame_step": float("nan")}}}, "estimate_s.per_frame_step"),
        ({"options": {"estimate_s": {"fixed": 1}}}, "estimate_s"),
        ({"options": {"estimate_s": 5}}, "estimate_s"),
        # a copy goes into every job routed to it
        ({"training": {"notes": "x" * 70_000}}, "65536"),
        ({"data_classes": ["public"] * 10_000}, "65536"),
    ],
)
def test_a_card_beyond_bounds_is_refused_naming_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        ModelCard.model_validate({**CARD, **change})
    assert field in str(err.value)
