"""The short-lived cache of verified keys."""

from __future__ import annotations

import time

from reelfoundry.schema import Role
from reelfoundry.store.keys import Principal, PrincipalCache

P = Principal("k", "t", "tenant", Role.viewer, False)


def test_hit_expiry_clear_and_disabled() -> None:
    cache = PrincipalCache(0.2)
    assert cache.get("rf_a_b") is None
    cache.put("rf_a_b", P)
    assert cache.get("rf_a_b") == P and cache.get("rf_a_c") is None
    assert "rf_a_b" not in repr(cache.__dict__)  # tokens are never kept in clear
    time.sleep(0.25)
    assert cache.get("rf_a_b") is None
    cache.put("rf_a_b", P)
    cache.clear()
    assert cache.get("rf_a_b") is None
    off = PrincipalCache(0)
    off.put("rf_a_b", P)
    assert off.get("rf_a_b") is None
