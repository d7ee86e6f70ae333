"""Text constraints shared by schemas and query parameters."""

from __future__ import annotations

#: No control characters (PostgreSQL text cannot hold NUL, and none belong in a name or label).
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
#: Prose (comments): line breaks and tabs allowed, other control characters (NUL above all) not.
PROSE = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
