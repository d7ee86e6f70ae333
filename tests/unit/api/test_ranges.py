"""Range header parsing."""

from __future__ import annotations

import pytest

from reelfoundry.api.ranges import parse_range
from reelfoundry.errors import BadRequest, RangeNotSatisfiable


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-9", (0, 9)),
        ("bytes=5-", (5, 99)),
        ("bytes=-10", (90, 99)),
        ("bytes=90-500", (90, 99)),
        ("bytes=-500", (0, 99)),
        ("bytes=0-1,5-6", None),
    ],
)
def test_valid(header: str, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=", "bytes=-", "bytes=a-b", "pages=1-2", "bytes=9-3", "bytes 0-1"])
def test_malformed(header: str) -> None:
    with pytest.raises(BadRequest):
        parse_range(header, 100)


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=-0", "bytes=200-300"])
def test_unsatisfiable(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 100)
