"""The scheduling core: priority classes, fair share, batching, device choice; fleet and trace files."""

from __future__ import annotations

from pathlib import Path

import pytest

from reelfoundry.errors import InvalidParameter
from reelfoundry.scheduling import (
    Job,
    JobQueue,
    fifo,
    gen_trace,
    jobs_from_records,
    load_fleet,
    parse_fleet,
    parse_trace,
    schedule,
    simulate,
)

EXAMPLES = Path(__file__).parents[3] / "examples" / "fleets"

ONE_H100 = "nodes:\n  - {name: g, count: 1, device: H100, provider: aws, pricing_model: on-demand, region: us-east-1}\n"
TWO_H100 = ONE_H100.replace("count: 1", "count: 2")


def job(
    i: int,
    t: float = 0.0,
    *,
    tenant: str = "a",
    model: str = "ltx-video",
    priority: str = "batch",
    frames: int = 121,
    steps: int = 40,
    deadline: float | None = None,
) -> Job:
    return Job(
        id=i,
        t=t,
        tenant=tenant,
        model=model,
        priority=priority,  # type: ignore[arg-type]
        num_frames=frames,
        width=768,
        height=512,
        steps=steps,
        deadline=deadline,
    )


def test_interactive_overtakes_earlier_batch() -> None:
    fleet = parse_fleet(ONE_H100)
    queue = [job(0, 0.0, frames=65), job(1, 5.0, frames=121, priority="interactive")]
    placed = schedule(queue, fleet, 10.0)
    assert [j.id for p in placed for j in p.jobs] == [1]
    assert [j.id for p in fifo(queue, fleet, 10.0) for j in p.jobs] == [0]  # the baseline does not


def test_flooding_tenant_does_not_starve_another() -> None:
    fleet = parse_fleet(TWO_H100)
    flood = [job(i, float(i), tenant="flood", model="hunyuan-video", frames=129) for i in range(100)]
    queue = [*flood, job(100, 500.0, tenant="quiet", model="hunyuan-video", frames=129)]
    tenants = sorted(j.tenant for p in schedule(queue, fleet, 600.0) for j in p.jobs)
    assert tenants == ["flood", "quiet"]
    # with more use behind it, the flooding tenant yields both slots
    used = schedule(queue, fleet, 600.0, usage={"flood": 1000.0, "quiet": 0.0})
    assert "quiet" in {j.tenant for p in used for j in p.jobs}
    assert sorted(j.tenant for p in fifo(queue, fleet, 600.0) for j in p.jobs) == ["flood", "flood"]


def test_only_compatible_jobs_share_a_batch() -> None:
    fleet = parse_fleet(ONE_H100)
    queue = [
        job(0, 0.0),
        job(1, 1.0, steps=30),  # other steps
        job(2, 2.0, frames=65),  # other frames
        job(3, 3.0, model="wan-1.3b"),  # other model
        job(4, 4.0),
        job(5, 5.0),
        job(6, 6.0),
        job(7, 7.0),  # fifth compatible: over ltx-video's max batch of 4
    ]
    [placement] = schedule(queue, fleet, 10.0)
    assert [j.id for j in placement.jobs] == [0, 4, 5, 6]
    assert {j.batch_key for j in placement.jobs} == {queue[0].batch_key}
    without = schedule(queue, fleet, 10.0, batching=False)
    assert [len(p.jobs) for p in without] == [1]


def test_batch_shrinks_to_fit_memory() -> None:
    fleet = parse_fleet(ONE_H100.replace("H100", "A100-40GB"))  # 40 GiB: one ltx-video 121x768x512 job
    queue = [job(i, float(i)) for i in range(4)]
    [placement] = schedule(queue, fleet, 10.0)
    assert len(placement.jobs) == 1


def test_cheapest_fitting_device_class_wins() -> None:
    fleet = parse_fleet(
        "nodes:\n"
        "  - {name: big, count: 1, device: H200, provider: aws, pricing_model: on-demand, region: us-east-1}\n"
        "  - {name: cpu, count: 1, device: cpu, provider: aws, pricing_model: on-demand, region: us-east-1}\n"
        "  - {name: old, count: 1, device: A100-40GB, provider: lambda, pricing_model: on-demand}\n"
    )
    # the template renderer is CPU-bound: the CPU is cheapest
    [p] = schedule([job(0, model="template", frames=120, steps=1)], fleet, 0.0)
    assert p.device == "cpu"
    # wan-1.3b fits the A100-40GB, which costs less per video than the H200 ($1.99/h at 0.32 vs $7.91/h at 1.1)
    [p] = schedule([job(1, model="wan-1.3b", frames=81)], fleet, 0.0)
    assert p.device == "A100-40GB"
    # hunyuan-video needs ~74 GiB: only the H200 fits
    [p] = schedule([job(2, model="hunyuan-video", frames=129)], fleet, 0.0)
    assert p.device == "H200"
    # a tight deadline the slow A100 cannot meet moves wan-1.3b to the H200
    [p] = schedule([job(3, model="wan-1.3b", frames=81, deadline=150.0)], fleet, 0.0)
    assert p.device == "H200"


def test_busy_slots_are_not_used() -> None:
    fleet = parse_fleet(TWO_H100)
    busy = {fleet.slots[0].name: 100.0}
    placed = schedule([job(0), job(1, frames=65)], fleet, 50.0, busy_until=busy)
    assert [p.slot for p in placed] == [fleet.slots[1].name]
    assert schedule([job(0)], fleet, 50.0, busy_until={s.name: 60.0 for s in fleet.slots}) == []


def test_queue_placed_jobs_leave_the_queue() -> None:
    queue = JobQueue([job(0), job(1, frames=65)])
    schedule(queue, parse_fleet(TWO_H100), 0.0)
    assert len(queue) == 0


def test_mig_partition_offers_slices() -> None:
    fleet = parse_fleet(
        "nodes:\n  - {name: m, count: 2, device: A100-80GB, provider: coreweave, pricing_model: on-demand,"
        " partition: 1g.10gb}\n"
    )
    assert len(fleet.slots) == 14
    assert fleet.devices == 2
    assert {s.type.memory_gib for s in fleet.slots} == {10.0}


def test_shipped_fleets_load() -> None:
    h100 = load_fleet(EXAMPLES / "h100.yaml")
    assert {s.type.device for s in h100.slots} == {"H100"}
    mixed = load_fleet(EXAMPLES / "mixed.yaml")
    assert {"cpu", "H100", "A100-80GB"} <= {s.type.device for s in mixed.slots}
    assert any(s.type.partition for s in mixed.slots)


@pytest.mark.parametrize(
    ("text", "line", "field"),
    [
        ("nodes:\n  - {name: g, count: 1, device: H100, provider: aws, pricing_model: spot}\n", 2, "pricing_model"),
        ("nodes:\n  - {name: g, count: 1, device: H100, provider: nope, pricing_model: spot}\n", 2, "device"),
        (
            "nodes:\n  - {name: g, count: 1, device: H100, provider: aws, pricing_model: on-demand, region: mars}\n",
            2,
            "region",
        ),
        (
            "nodes:\n  - name: ok\n    count: 1\n    device: cpu\n    provider: aws\n    pricing_model: on-demand\n"
            "  - name: bad\n    count: 0\n    device: cpu\n    provider: aws\n    pricing_model: on-demand\n",
            7,
            "count",
        ),
        ("nodes:\n  - {name: g, count: 1, device: GTX, provider: aws, pricing_model: on-demand}\n", 2, "device"),
        (
            "nodes:\n  - {name: g, count: 1, device: L40S, provider: aws, pricing_model: on-demand,"
            " partition: 1g.5gb}\n",
            2,
            "partition",
        ),
        ("nodes:\n  - {name: g, count: 1, device: H100, pricing_model: on-demand}\n", 2, "provider"),
    ],
)
def test_bad_fleet_names_line_and_field(text: str, line: int, field: str) -> None:
    with pytest.raises(InvalidParameter) as err:
        parse_fleet(text, "f.yaml")
    assert err.value.parameter == field
    assert f"f.yaml: line {line}" in err.value.detail
    assert f"'{field}'" in err.value.detail


def test_catalog_gap_names_what_exists() -> None:
    with pytest.raises(InvalidParameter) as err:
        parse_fleet("nodes:\n  - {name: g, count: 1, device: H100, provider: aws, pricing_model: spot}\n")
    assert "on-demand" in err.value.detail and "capacity-block" in err.value.detail


GOOD = (
    '{"t": 0, "tenant": "a", "model": "builtin", "priority": "batch",'
    ' "num_frames": 16, "width": 64, "height": 64, "steps": 20}'
)


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (GOOD.replace('"batch"', '"urgent"'), "priority"),
        (GOOD.replace('"num_frames": 16', '"num_frames": -1'), "num_frames"),
        (GOOD.replace('"tenant": "a", ', ""), "tenant"),
        (GOOD.replace('"builtin"', '"sora"'), "model"),
        (GOOD.replace('"t": 0', '"t": "soon"'), "t"),
        (GOOD[:-1] + ', "deadline_s": 0}', "deadline_s"),
        ("{not json", "trace"),
    ],
)
def test_bad_trace_names_line_and_field(bad: str, field: str) -> None:
    with pytest.raises(InvalidParameter) as err:
        parse_trace(f"{GOOD}\n\n{bad}\n", "t.jsonl")
    assert err.value.parameter == field
    assert "t.jsonl: line 3" in err.value.detail


def test_good_trace_parses() -> None:
    [j] = parse_trace(GOOD[:-1] + ', "deadline_s": 60}')
    assert (j.model, j.deadline) == ("builtin", 60.0)


def test_simulator_is_deterministic_for_a_seed() -> None:
    fleet = load_fleet(EXAMPLES / "mixed.yaml")
    a = simulate(gen_trace(300, seed=3), fleet, "reelfoundry")
    b = simulate(gen_trace(300, seed=3), fleet, "reelfoundry")
    c = simulate(gen_trace(300, seed=4), fleet, "reelfoundry")
    assert a == b
    assert a != c
    assert gen_trace(50, 3) == gen_trace(50, 3) != gen_trace(50, 4)


def test_simulate_reports_the_metrics_for_both_policies() -> None:
    jobs = jobs_from_records(gen_trace(400, seed=7))
    for name in ("h100.yaml", "mixed.yaml"):
        fleet = load_fleet(EXAMPLES / name)
        for policy in ("fifo", "reelfoundry"):
            r = simulate(jobs, fleet, policy)
            assert r["jobs_completed"] == 400
            assert 0 < r["utilization"] <= 1
            assert set(r["p95_wait_s"]) == {"interactive", "batch"}
            assert r["cost_per_video_usd"] > 0 and r["idle_cost_usd"] >= 0
            assert r["deadline_misses"] >= 0
            busy = sum(r["busy_s_by_device"].values())
            assert busy == pytest.approx(r["busy_device_s"], abs=0.01)
            assert busy / (fleet.devices * r["span_s"]) == pytest.approx(r["fleet_utilization"], abs=1e-3)
            assert busy / r["held_device_s"] == pytest.approx(r["utilization"], abs=1e-3)
            assert r["held_device_s"] <= fleet.devices * r["span_s"] + 0.01
            if policy == "fifo":  # a static fleet: every device held for the whole span
                assert r["held_device_s"] == pytest.approx(fleet.devices * r["span_s"])
                assert r["utilization"] == r["fleet_utilization"]
                assert r["cost_usd"] == r["fleet_cost_usd"]


def test_reelfoundry_beats_fifo_on_interactive_wait_and_misses() -> None:
    jobs = jobs_from_records(gen_trace(600, seed=5))
    fleet = load_fleet(EXAMPLES / "h100.yaml")
    base, ours = simulate(jobs, fleet, "fifo"), simulate(jobs, fleet, "reelfoundry")
    assert ours["p95_wait_s"]["interactive"] <= 0.5 * base["p95_wait_s"]["interactive"]
    assert ours["deadline_misses"] <= base["deadline_misses"]
    assert ours["batches"] < base["batches"] == 600


def test_cost_counts_every_provisioned_device_for_the_span() -> None:
    fleet = parse_fleet(TWO_H100)
    r = simulate([job(0, model="hunyuan-video", frames=129)], fleet, "fifo")
    assert r["cost_usd"] == pytest.approx(2 * 6.88 * r["span_s"] / 3600, rel=1e-3)
    assert r["utilization"] == pytest.approx(0.5, rel=1e-3)


def test_plot_writes_a_png(tmp_path: Path) -> None:
    from reelfoundry.scheduling import Timeline, plot_timeline

    tl = Timeline()
    simulate(gen_trace(50, seed=1), load_fleet(EXAMPLES / "h100.yaml"), "reelfoundry", timeline=tl)
    out = plot_timeline(tl, tmp_path / "t.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
