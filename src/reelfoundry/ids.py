"""Identifiers: ULIDs (time-ordered, so cursors and "newest first" need no second column)."""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_lock = threading.Lock()
_last_ms = 0
_last_rand = 0


def new_id() -> str:
    """A 26-character ULID, monotonic within this process even inside one millisecond."""
    global _last_ms, _last_rand
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            ms = _last_ms
            rand = (_last_rand + 1) & ((1 << 80) - 1)
        else:
            rand = int.from_bytes(os.urandom(10), "big")
        _last_ms, _last_rand = ms, rand
    value = (ms << 80) | rand
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def is_id(value: str) -> bool:
    """Whether ``value`` looks like a ULID (used to reject junk before a query)."""
    return len(value) == 26 and all(c in _ALPHABET for c in value)
