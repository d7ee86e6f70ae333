"""The models file is input: a hostile one is refused with a one-line error naming the file and line, never a
traceback, a hang, or a card that blows up when it is written out."""

from __future__ import annotations

import time

import pytest

from reelfoundry.errors import InvalidParameter
from reelfoundry.portfolio.config import MAX_DEPTH, parse_models

CARD = (
    "{id: promo, name: Promo, backend: template, task: template, default_num_frames: 24, default_fps: 24, "
    "default_width: 320, default_height: 180, max_num_frames: 240, max_width: 640, max_height: 360%s}"
)


def models(extra: str = "", *, before: str = "") -> str:
    return f"{before}models:\n  - {CARD % extra}\n"


def test_a_plain_file_loads_and_names_the_line_of_a_bad_card() -> None:
    assert [c.id for c in parse_models(models(", options: {k: [1, 2]}, quality: {score: 0.5, source: x}"))] == ["promo"]
    with pytest.raises(InvalidParameter, match=r"f.yaml: line 3 \(models\[1\]\): field 'max_width'"):
        parse_models(models() + f"  - {CARD.replace('max_width: 640', 'max_width: 0') % ''}\n", "f.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # nine levels of ten aliases: a billion elements once the card is dumped as JSON
        (
            models(
                ", options: {d: {x0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1], x1: &a1 [*a0, *a0, *a0, *a0, *a0, *a0, *a0, "
                "*a0, *a0, *a0]}, k: [*a1, *a1]}"
            ),
            "aliases",
        ),
        (models(", options: &r {k: *r}"), "aliases"),  # a cycle
        ("models: " + "[" * 200_000, f"deeper than {MAX_DEPTH}"),  # the composer recursed until RecursionError
        ("models:\n" + "  - " * 5_000 + "x\n", f"deeper than {MAX_DEPTH}"),
        (models(", options: {k: !!binary /w==}"), "bytes"),  # not UTF-8: the card could not be dumped as JSON
        (models(", options: {k: !!set {a}}"), "set"),
        (models(", max_fps: " + "1" * 5000), "4300 digits"),
        (models(", options: {k: 2026-13-45}"), "month"),
        ("1: x\nfoo: y\nmodels: []\n", "unknown top-level field '1'"),  # keys of two types were sorted together
    ],
    ids=["alias-bomb", "alias-cycle", "deep-flow", "deep-block", "binary", "set", "huge-int", "bad-date", "key-types"],
)
def test_a_hostile_file_is_a_one_line_error(text: str, message: str) -> None:
    started = time.monotonic()
    with pytest.raises(InvalidParameter, match=message) as err:
        parse_models(text, "f.yaml")
    assert err.value.detail.startswith("f.yaml: ") and "\n" not in err.value.detail
    assert time.monotonic() - started < 5
