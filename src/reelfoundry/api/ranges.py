"""HTTP Range parsing for single byte ranges (RFC 9110 §14)."""

from __future__ import annotations

import re

from reelfoundry.errors import BadRequest, RangeNotSatisfiable

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """(start, end inclusive) for a single range; None to send the whole body (multi-range).

    BadRequest for syntax errors, RangeNotSatisfiable when no byte of it exists.
    """
    header = header.strip()
    if "," in header and header.startswith("bytes="):
        return None
    m = _RANGE.match(header)
    if not m or (not m.group(1) and not m.group(2)):
        raise BadRequest(f"malformed Range header {header[:100]!r}; expected bytes=START-END", parameter="Range")
    first, last = m.group(1), m.group(2)
    if first:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
        if last and int(last) < start:
            raise BadRequest(f"Range {header!r} ends before it starts", parameter="Range")
    else:
        suffix = int(last)
        if suffix == 0:
            raise RangeNotSatisfiable(f"Range {header!r} selects no bytes", size=size)
        start, end = max(0, size - suffix), size - 1
    if start >= size:
        raise RangeNotSatisfiable(f"Range {header!r} starts beyond the {size}-byte content", size=size)
    return start, end
