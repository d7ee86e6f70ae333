"""The KPI scorecard on a seeded database (SQLite and PostgreSQL) whose answers were worked out by hand.

The world, two tenants (acme, globex), November 2026, UTC:

acme jobs      created  started   ended    state      campaign model       device   busy idle  $     kWh
  J1 generate  01 10:00 +10 s     01 10:01 succeeded  spring   builtin     cpu ×1    30   10  0.30 0.002
  J2 generate  01 11:00 +20 s     01 11:01 succeeded  spring   acme-coral  cpu ×1    30   30  0.30 0.002
  J3 generate  02 08:00 +40 s     02 08:01 failed     autumn   builtin     H100 ×.5  20    0  0.15 0.001
  J4 generate  02 09:00 +100 s    02 09:02 succeeded  summer   vendor      api        0    0  0.05 0
  F1 finetune  02 10:00 +300 s    02 10:10 succeeded  -        builtin     cpu ×1    60    0  1.00 0.005
  J5 generate  03 00:00 queued                        winter
globex: J6 generate 01 08:00 +5 s, ended 01 08:01, succeeded, spring, cpu ×1, busy 100, $9.99, 0.01 kWh.

acme assets: A1 (J1) published (reviewed 01 12:00, published 01 16:00); A2 (J2) rejected 02 09:00; A4 (J4) published
(reviewed 03 10:00, published 03 12:00); uploads U1 approved, U2 approved but no-training, U3 approved but rights
expired 11-05, U4 pending (U1–U3 reviewed 10-15). globex: A6 (J6) published 01 12:00.
Fine-tunes (acme): F1 succeeded, used A1, U1, U2 and an unknown id; F9 failed, used A4.
Model cards: acme-coral (acme key) registered 01 00:00, approved 01 06:00; acme-slow (acme key) registered 02 00:00,
approved 02 12:00, first job stored 03 12:00; globex-x (globex key) registered 01 00:00, never approved.
Outcomes (acme): spring 4 conversions (period end 02), summer 1 (period end 03).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.orm import Session

from reelfoundry.ids import new_id
from reelfoundry.kpi import scorecard
from reelfoundry.kpi.scorecard import daily_trends, nearest_rank
from reelfoundry.schema import Role
from reelfoundry.schema.outcome import OutcomeCreate
from reelfoundry.store import Database
from reelfoundry.store import keys as keystore
from reelfoundry.store import outcomes as outcomestore
from reelfoundry.store.tables import AssetRow, CostRecordRow, FinetuneRow, JobRow, ModelCardRow

D = Decimal
NOW = datetime(2026, 11, 10, tzinfo=UTC)


def at(day: int, hour: int = 0, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def _job(
    s: Session,
    tenant: str,
    created: datetime,
    *,
    wait_s: float | None,
    state: str,
    campaign: str | None,
    model: str = "builtin",
    kind: str = "generate",
    ended: datetime | None = None,
    device: str | None = "cpu",
    share: str | None = "1",
    busy: float = 0.0,
    idle: float = 0.0,
    usd: str = "0",
    kwh: str = "0",
) -> str:
    job_id = new_id()
    s.add(
        JobRow(
            id=job_id,
            tenant_id=tenant,
            state=state,
            model=model,
            priority=0,
            request={},
            request_hash="h",
            campaign=campaign,
            attempts=1,
            max_attempts=3,
            kind=kind,
            created_at=created,
            started_at=created + timedelta(seconds=wait_s) if wait_s is not None else None,
            finished_at=ended,
        )
    )
    s.flush()
    if ended is not None:
        s.add(
            CostRecordRow(
                id=new_id(),
                job_id=job_id,
                tenant_id=tenant,
                campaign=campaign,
                model=model,
                state=state,
                device=device,
                device_share=D(share) if share else None,
                device_seconds=busy,
                idle_seconds=idle,
                energy_kwh=D(kwh),
                co2e_kg=D(kwh) / 2,
                stored_bytes=0,
                video_seconds=2.0 if state == "succeeded" else 0.0,
                egress_bytes=0,
                compute_usd=D(usd),
                idle_usd=D(0),
                storage_usd=D(0),
                egress_usd=D(0),
                total_usd=D(usd),
                created_at=ended,
            )
        )
    return job_id


def _asset(
    s: Session,
    tenant: str,
    state: str,
    *,
    job_id: str | None = None,
    campaign: str | None = None,
    reviewed: datetime | None = None,
    published: datetime | None = None,
    **extra: Any,
) -> str:
    asset_id = new_id()
    s.add(
        AssetRow(
            id=asset_id,
            tenant_id=tenant,
            job_id=job_id,
            media_type="video/mp4",
            storage_key=f"k/{asset_id}",
            bytes=1,
            sha256="x",
            campaign=campaign,
            review_state=state,
            reviewed_at=reviewed,
            published_at=published,
            origin="generated" if job_id else "uploaded",
            created_at=at(1),
            **extra,
        )
    )
    return asset_id


def _card(s: Session, model: str, key_id: str, registered: datetime, approved: datetime | None, **extra: Any) -> None:
    status = "approved" if approved else "candidate"
    s.add(
        ModelCardRow(
            id=model, card={}, created_by=key_id, created_at=registered, status=status, approved_at=approved, **extra
        )
    )


@pytest.fixture
def world(database: Database) -> dict[str, str]:
    with database.write() as s:
        acme = keystore.get_or_create_tenant(s, "acme")
        globex = keystore.get_or_create_tenant(s, "globex")
        acme_key, _ = keystore.create_key(s, acme, "acme-admin", Role.admin)
        globex_key, _ = keystore.create_key(s, globex, "globex-admin", Role.admin)
        a, b = acme.id, globex.id
        j1 = _job(s, a, at(1, 10), wait_s=10, state="succeeded", campaign="spring", ended=at(1, 10, 1),
                  busy=30, idle=10, usd="0.30", kwh="0.002")  # fmt: skip
        j2 = _job(s, a, at(1, 11), wait_s=20, state="succeeded", campaign="spring", model="acme-coral",
                  ended=at(1, 11, 1), busy=30, idle=30, usd="0.30", kwh="0.002")  # fmt: skip
        _job(s, a, at(2, 8), wait_s=40, state="failed", campaign="autumn", ended=at(2, 8, 1), device="H100",
             share="0.5", busy=20, usd="0.15", kwh="0.001")  # fmt: skip
        j4 = _job(s, a, at(2, 9), wait_s=100, state="succeeded", campaign="summer", model="vendor",
                  ended=at(2, 9, 2), device="api", share=None, usd="0.05")  # fmt: skip
        f1 = _job(s, a, at(2, 10), wait_s=300, state="succeeded", campaign=None, kind="finetune",
                  ended=at(2, 10, 10), busy=60, usd="1.00", kwh="0.005")  # fmt: skip
        _job(s, a, at(3), wait_s=None, state="queued", campaign="winter")
        j6 = _job(s, b, at(1, 8), wait_s=5, state="succeeded", campaign="spring", ended=at(1, 8, 1), busy=100,
                  usd="9.99", kwh="0.01")  # fmt: skip
        a1 = _asset(s, a, "published", job_id=j1, campaign="spring", reviewed=at(1, 12), published=at(1, 16))
        _asset(s, a, "rejected", job_id=j2, campaign="spring", reviewed=at(2, 9))
        a4 = _asset(s, a, "published", job_id=j4, campaign="summer", reviewed=at(3, 10), published=at(3, 12))
        u1 = _asset(s, a, "approved", reviewed=at(15, 10, month=10))
        u2 = _asset(s, a, "approved", reviewed=at(15, 10, month=10), usage_restrictions=["no-training"])
        _asset(s, a, "approved", reviewed=at(15, 10, month=10), rights_expires_at=at(5))
        _asset(s, a, "pending_review")
        _asset(s, b, "published", job_id=j6, campaign="spring", reviewed=at(1, 11), published=at(1, 12))
        for state, used, job in (("succeeded", [a1, u1, u2, new_id()], f1), ("failed", [a4], None)):
            s.add(
                FinetuneRow(
                    id=new_id(),
                    tenant_id=a,
                    job_id=job,
                    name=f"ft-{state}",
                    base="builtin",
                    params={},
                    state=state,
                    assets_used=used,
                    created_at=at(2, 10),
                    finished_at=at(2, 10, 10),
                )
            )
        _card(s, "acme-coral", acme_key.id, at(1), at(1, 6))
        _card(s, "acme-slow", acme_key.id, at(2), at(2, 12), first_job_at=at(3, 12))
        _card(s, "globex-x", globex_key.id, at(1), None)
    for campaign, conversions, day in (("spring", 4, 2), ("summer", 1, 3)):
        with database.write() as s:
            body = OutcomeCreate(campaign=campaign, views=100, conversions=conversions, period_end=at(day, 20))
            outcomestore.create(s, a, body, campaign=campaign, actor=None)
    return {"acme": a, "globex": b}


def _points(card: Any, name: str) -> list[tuple[str, Decimal | None]]:
    trend = next(t for t in card.trends if t.name == name)
    return [(p.day, p.value) for p in trend.points]


def test_a_tenants_scorecard_matches_the_hand_computed_figures(database: Database, world: dict[str, str]) -> None:
    with database.read() as s:
        card = scorecard(s, world["acme"], None, None, NOW)
        assert daily_trends(s, world["acme"], None, None) == card.trends  # what /ui/kpi's charts draw

    gpu = card.gpu_utilization  # busy 30+30+20×0.5+60 = 130, idle 10+30 = 40 (the vendor-API job has no device)
    assert gpu.available and gpu.value == D("0.7647") and gpu.n == 4
    assert (gpu.busy_device_s, gpu.idle_device_s) == (130.0, 40.0)
    assert [(d.device, d.jobs, d.utilization) for d in gpu.devices] == [("H100", 1, D("1")), ("cpu", 3, D("0.75"))]
    assert "Device classes: H100, cpu" in gpu.definition

    wait = card.queue_wait_s  # waits 10, 20, 40, 100: p50 at rank 2, p95 at rank 4; the fine-tune apart
    assert (wait.n, wait.p50_s, wait.p95_s, wait.value) == (4, 20.0, 100.0, D("20"))
    assert (wait.finetune.n, wait.finetune.p50_s, wait.finetune.p95_s) == (1, 300.0, 300.0)

    cost = card.cost_per_inference_usd  # $0.80 over 4 ended generation jobs; over 3 succeeded videos
    assert (cost.value, cost.n, cost.succeeded, cost.total_usd) == (D("0.2"), 4, 3, D("0.8"))
    assert cost.per_succeeded_video_usd == D("0.2666666667")

    velocity = card.innovation_velocity  # spring 10:00 → 16:00 = 6 h (globex's spring, published 12:00, not
    # counted); summer 02 09:00 → 03 12:00 = 27 h; autumn and winter pending
    assert [(c.campaign, c.hours) for c in velocity.campaigns] == [
        ("spring", 6.0),
        ("autumn", None),
        ("summer", 27.0),
        ("winter", None),
    ]
    assert (velocity.value, velocity.n, velocity.pending) == (D("16.5"), 2, 2)

    agility = card.model_agility  # acme-coral: its first job after approval 11 h after registration;
    # acme-slow: the stored first job, 36 h; globex's card not shown
    assert [(m.model, m.registered_to_approved_h, m.registered_to_first_job_h) for m in agility.models] == [
        ("acme-coral", 6.0, 11.0),
        ("acme-slow", 12.0, 36.0),
    ]
    assert (agility.value, agility.n, agility.pending) == (D("23.5"), 2, 0)

    leverage = card.data_asset_leverage  # eligible A1, A4, U1; the succeeded fine-tune used A1 and U1
    assert (leverage.eligible, leverage.used, leverage.value) == (3, 2, D("0.6667"))

    outcome = card.cost_per_business_outcome_usd  # $1.80 of every record (fine-tune in) over 5 conversions
    assert (outcome.value, outcome.cost_usd, outcome.conversions) == (D("0.36"), D("1.8"), 5)
    per = {c.campaign: (c.cost_usd, c.conversions, c.cost_per_conversion_usd) for c in outcome.campaigns}
    assert per == {
        None: (D("1"), 0, None),
        "autumn": (D("0.15"), 0, None),
        "spring": (D("0.6"), 4, D("0.15")),
        "summer": (D("0.05"), 1, D("0.05")),
    }

    approval = card.approval_rate  # A1, A4 published, U1–U3 approved; A2 rejected
    assert (approval.approved, approval.rejected, approval.value) == (5, 1, D("0.8333"))

    assert card.energy_kwh_per_video.value == D("0.001666667")  # 0.005 kWh over 3 videos
    assert card.co2e_kg_per_video.value == D("0.000833333")
    assert card.energy_kwh_per_video.total == D("0.005") and card.energy_kwh_per_video.videos == 3

    assert _points(card, "gpu_utilization") == [("2026-11-01", D("0.6")), ("2026-11-02", D("1"))]
    assert _points(card, "queue_wait_p50_s") == [("2026-11-01", D("10")), ("2026-11-02", D("40"))]
    assert _points(card, "queue_wait_p95_s") == [("2026-11-01", D("20")), ("2026-11-02", D("100"))]
    assert _points(card, "cost_per_inference_usd") == [("2026-11-01", D("0.3")), ("2026-11-02", D("0.1"))]
    assert _points(card, "approval_rate") == [
        ("2026-10-15", D("1")),
        ("2026-11-01", D("1")),
        ("2026-11-02", D("0")),
        ("2026-11-03", D("1")),
    ]


def test_a_window_and_the_other_tenant_and_every_tenant(database: Database, world: dict[str, str]) -> None:
    with database.read() as s:
        day2 = scorecard(s, world["acme"], at(2), at(3), NOW)
        globex = scorecard(s, world["globex"], None, None, NOW)
        everyone = scorecard(s, None, None, None, NOW)
        before_finetune = scorecard(s, world["acme"], None, at(2), NOW)

    assert day2.gpu_utilization.value == D("1") and day2.gpu_utilization.n == 2  # J3 and F1, no idle
    assert (day2.queue_wait_s.p50_s, day2.queue_wait_s.p95_s) == (40.0, 100.0)
    assert day2.cost_per_inference_usd.value == D("0.1")
    assert day2.cost_per_inference_usd.per_succeeded_video_usd == D("0.2")
    assert (day2.approval_rate.value, day2.approval_rate.n) == (D("0"), 1)  # only A2, rejected on the 2nd
    # autumn and summer started that day; summer's publication (the 3rd) is after the window: both pending
    assert not day2.innovation_velocity.available and day2.innovation_velocity.pending == 2
    assert day2.innovation_velocity.reason == "no campaign has published an asset yet"
    # acme-slow was registered that day; its first job (the 3rd) is after the window: pending
    assert not day2.model_agility.available and [m.model for m in day2.model_agility.models] == ["acme-slow"]
    assert day2.model_agility.pending == 1 and day2.model_agility.models[0].first_job_at is None
    assert day2.cost_per_business_outcome_usd.value == D("0.3")  # $1.20 over spring's 4 conversions

    assert before_finetune.data_asset_leverage.value == D("0") and before_finetune.data_asset_leverage.eligible == 3

    assert globex.cost_per_inference_usd.value == D("9.99") and globex.gpu_utilization.value == D("1")
    assert [(c.campaign, c.hours) for c in globex.innovation_velocity.campaigns] == [("spring", 4.0)]
    assert not globex.model_agility.available and globex.model_agility.pending == 1
    assert (globex.data_asset_leverage.eligible, globex.data_asset_leverage.value) == (1, D("0"))  # no fine-tune
    assert not globex.cost_per_business_outcome_usd.available
    assert globex.cost_per_business_outcome_usd.reason == "no outcomes posted"

    assert everyone.cost_per_inference_usd.value == D("2.158")  # (0.80 + 9.99) / 5
    assert everyone.innovation_velocity.value == D("6")  # median of 4, 6 and 27 h
    assert everyone.model_agility.pending == 1 and everyone.model_agility.value == D("23.5")


def test_an_empty_database_says_why_each_figure_is_missing(database: Database) -> None:
    with database.read() as s:
        card = scorecard(s, None, None, None, NOW)
    figures = [getattr(card, name) for name in type(card).model_fields if name.endswith(("_s", "_usd", "_video"))]
    figures += [card.gpu_utilization, card.innovation_velocity, card.model_agility, card.data_asset_leverage]
    figures += [card.approval_rate]
    assert len(figures) == 10
    for figure in figures:
        assert not figure.available and figure.value is None and figure.reason, figure
    assert card.cost_per_business_outcome_usd.reason == "no outcomes posted"
    assert all(not t.points for t in card.trends)


def test_nearest_rank_percentiles() -> None:
    assert nearest_rank([], 50) is None
    assert nearest_rank([7.0], 95) == 7.0
    values = [float(v) for v in range(1, 21)]  # 1..20: p50 at rank 10, p95 at rank 19
    assert (nearest_rank(values, 50), nearest_rank(values, 95)) == (10.0, 19.0)
    assert nearest_rank([3.0, 1.0, 2.0], 50) == 2.0  # sorted first; rank ⌈1.5⌉ = 2


def test_cost_records_are_read_as_daily_sums_not_one_object_per_job(database: Database) -> None:
    """A tenant's year of jobs must not become a year of Python objects per request (the page and each of its
    five charts read the scorecard): the rows are summed per day, kind, state, campaign and device as they stream."""
    from reelfoundry.kpi.scorecard import _records

    with database.write() as s:
        t = keystore.get_or_create_tenant(s, "busy").id
        for i in range(24):  # 20 succeeded and 4 failed on one day, on one CPU, $0.25 and 0.001 kWh each
            _job(s, t, at(4, i), wait_s=1, state="failed" if i % 6 == 5 else "succeeded", campaign="c",
                 ended=at(4, i, 1), busy=30, idle=10, usd="0.25", kwh="0.001")  # fmt: skip
    with database.read() as s:
        assert len(_records(s, t, None, None)) == 2  # (day 4, generate, succeeded|failed, c, cpu)
        card = scorecard(s, t, None, None, NOW)
    cost = card.cost_per_inference_usd
    assert (cost.n, cost.succeeded, cost.total_usd, cost.value) == (24, 20, D("6.00"), D("0.25"))
    assert cost.per_succeeded_video_usd == D("0.30")  # $6.00 ÷ 20
    assert card.gpu_utilization.value == D("0.7500") and card.gpu_utilization.n == 24  # 720 ÷ (720 + 240)
    assert card.gpu_utilization.devices[0].jobs == 24
    assert card.energy_kwh_per_video.value == D("0.0012") and card.energy_kwh_per_video.n == 20  # 0.024 ÷ 20
    assert _points(card, "cost_per_inference_usd") == [("2026-11-04", D("0.25"))]
    assert (card.queue_wait_s.n, card.queue_wait_s.p95_s) == (24, 1.0)
