"""The lifecycle rule (pure): which hot objects move to the cold tier, and when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from reelfoundry.assets.lifecycle import Move, Rule, plan_moves
from reelfoundry.store.objects import StoredObject, Tier

T0 = datetime(2026, 1, 1, tzinfo=UTC)
RULE = Rule(cold_after_days=30)


def _obj(key: str, last_read_days_ago: float, tier: Tier = "hot", now: datetime = T0) -> StoredObject:
    last = now - timedelta(days=last_read_days_ago)
    return StoredObject(key, tier, 100, created_at=last - timedelta(days=5), last_access_at=last)


def test_nothing_moves_before_n_days_without_a_read() -> None:
    objects = [_obj("t/a.mp4", 0), _obj("t/b.mp4", 29.99)]
    assert plan_moves(objects, T0, RULE) == []


def test_hot_objects_unread_for_n_days_move_to_cold_longest_unread_first() -> None:
    objects = [_obj("t/new.mp4", 1), _obj("t/month.mp4", 30), _obj("t/year.mp4", 365)]
    assert plan_moves(objects, T0, RULE) == [
        Move("t/year.mp4", "hot", "cold", 100, 365.0),
        Move("t/month.mp4", "hot", "cold", 100, 30.0),
    ]


def test_a_read_resets_the_clock() -> None:
    written = StoredObject("t/a.mp4", "hot", 100, created_at=T0, last_access_at=T0)
    later = T0 + timedelta(days=31)
    assert [m.key for m in plan_moves([written], later, RULE)] == ["t/a.mp4"]
    read_yesterday = StoredObject("t/a.mp4", "hot", 100, created_at=T0, last_access_at=later - timedelta(days=1))
    assert plan_moves([read_yesterday], later, RULE) == []
    assert [m.key for m in plan_moves([read_yesterday], later + timedelta(days=29), RULE)] == ["t/a.mp4"]


def test_cold_objects_stay_cold_and_are_never_deleted() -> None:
    assert plan_moves([_obj("t/old.mp4", 1000, tier="cold")], T0, RULE) == []


def test_the_rule_follows_its_setting() -> None:
    objects = [_obj("t/a.mp4", 2)]
    assert plan_moves(objects, T0, Rule(cold_after_days=1)) != []
    assert plan_moves(objects, T0, Rule(cold_after_days=3)) == []
