"""Text constraints shared by schemas and query parameters."""

from __future__ import annotations

#: No control characters (PostgreSQL text cannot hold NUL, and none belong in a name or label).
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
