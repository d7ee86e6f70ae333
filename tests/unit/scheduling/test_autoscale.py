"""Right-sizing the fleet: autoscale decisions, held-time billing in the simulator, batch wait, backfill."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from reelfoundry.errors import InvalidParameter
from reelfoundry.scheduling import (
    Autoscale,
    Job,
    JobQueue,
    Timeline,
    autoscale,
    gen_trace,
    jobs_from_records,
    load_fleet,
    parse_fleet,
    schedule,
    simulate,
)
from reelfoundry.scheduling.policy import batch_wait_ends

EXAMPLES = Path(__file__).parents[3] / "examples" / "fleets"
H100 = "{name: g, count: %d, device: H100, provider: aws, pricing_model: %s, region: %s%s}"


def fleet(count: int = 2, pricing: str = "on-demand", extra: str = "", autoscale: str = "") -> str:
    region = "us-east-1" if pricing != "reserved" else "us"
    provider_line = H100 % (count, pricing, region, extra)
    if pricing == "reserved":
        provider_line = provider_line.replace("provider: aws", "provider: lambda")
    head = f"autoscale: {autoscale}\n" if autoscale else ""
    return f"{head}nodes:\n  - {provider_line}\n"


def job(i: int, t: float = 0.0, *, priority: str = "batch", deadline: float | None = None, **kw: object) -> Job:
    shape: dict[str, object] = {"model": "ltx-video", "num_frames": 121, "width": 768, "height": 512, "steps": 40}
    shape.update(kw)
    return Job(id=i, t=t, tenant="a", priority=priority, deadline=deadline, **shape)  # type: ignore[arg-type]


# --- the pure decision -------------------------------------------------------------------------------


def test_an_idle_device_is_released_after_the_timeout_and_not_before() -> None:
    f = parse_fleet(fleet(autoscale="{idle_timeout_s: 300, startup_s: 120, backlog_s: 900}"))
    held = {u.name: 0.0 for u in f.units}
    idle = {"g-0": 100.0, "g-1": 350.0}
    actions = autoscale([], f, 399.0, held=held, idle_since=idle)
    assert actions == []
    [release] = autoscale([], f, 400.0, held=held, idle_since=idle)
    assert (release.action, release.device, release.at) == ("release", "g-0", 400.0)
    # a busy device is never released, however long ago its last job ended
    assert autoscale([], f, 400.0, held=held, idle_since=idle, busy_until={"g-0": 500.0}) == []


def test_min_count_and_reserved_devices_stay_held() -> None:
    f = parse_fleet(fleet(extra=", min_count: 1", autoscale="{idle_timeout_s: 60, startup_s: 10, backlog_s: 900}"))
    held = {u.name: 0.0 for u in f.units}
    assert [a.device for a in autoscale([], f, 1000.0, held=held)] == ["g-0"]  # one of two; min_count 1 keeps g-1
    reserved = parse_fleet(fleet(pricing="reserved"))
    assert not reserved.elastic
    assert autoscale([], reserved, 10_000.0, held={u.name: 0.0 for u in reserved.units}) == []


def test_a_backlog_acquires_devices_that_pay_the_start_up() -> None:
    f = parse_fleet(fleet(count=4, autoscale="{idle_timeout_s: 300, startup_s: 200, backlog_s: 900}"))
    held = {"g-0": 0.0}
    busy = {"g-0": 1000.0}  # the one held device is busy past now + backlog_s
    queue = [job(i, 0.0, model="hunyuan-video", num_frames=129, width=960, height=544, steps=30) for i in range(6)]
    actions = autoscale(queue, f, 100.0, held=held, busy_until=busy)
    assert {a.action for a in actions} == {"acquire"}
    # six ~210 s jobs need 1260 s; a new device brings 900 - 200 = 700 s: two devices
    assert [a.device for a in actions] == ["g-1", "g-2"]
    assert all(a.at == 100.0 and a.ready_at == 300.0 for a in actions)
    # a device already starting counts: nothing more for the same backlog
    starting = {"g-0": 0.0, "g-1": 300.0, "g-2": 300.0}
    assert autoscale(queue, f, 100.0, held=starting, busy_until=busy) == []


def test_work_the_held_devices_can_absorb_acquires_nothing() -> None:
    f = parse_fleet(fleet(count=4))
    queue = [job(0), job(1, num_frames=65, steps=30)]
    assert autoscale(queue, f, 0.0, held={"g-0": 0.0}) == []
    # ...unless nothing held can run it at all: then one device, however little the work
    assert [a.action for a in autoscale(queue, f, 0.0, held={})] == ["acquire"]


def test_autoscale_settings_are_checked_naming_the_field() -> None:
    with pytest.raises(InvalidParameter) as err:
        parse_fleet(fleet(autoscale="{idle_timeout_s: 300, startup_s: 900, backlog_s: 600}"), "f.yaml")
    assert err.value.parameter == "backlog_s" and "f.yaml: line 1" in err.value.detail
    with pytest.raises(InvalidParameter) as err:
        parse_fleet(fleet(autoscale="{idle: 3}"), "f.yaml")
    assert err.value.parameter == "idle"
    with pytest.raises(InvalidParameter) as err:
        parse_fleet(fleet(count=2, extra=", min_count: 3"), "f.yaml")
    assert err.value.parameter == "min_count" and "f.yaml: line 2" in err.value.detail
    assert parse_fleet(fleet()).autoscale == Autoscale()


# --- the simulator -----------------------------------------------------------------------------------


def test_fifo_holds_the_whole_fleet_and_ignores_autoscale_settings() -> None:
    trace = gen_trace(200, seed=2)
    static = parse_fleet(fleet(count=2))
    tuned = parse_fleet(fleet(count=2, autoscale="{idle_timeout_s: 10, startup_s: 5, backlog_s: 20}"))
    a, b = simulate(trace, static, "fifo"), simulate(trace, tuned, "fifo")
    assert a == b
    assert a["autoscaling"] is False and a["acquisitions"] == a["releases"] == 0
    assert a["held_device_s"] == pytest.approx(2 * a["span_s"])
    assert a["batches"] == 200  # one job per device, no batching
    with pytest.raises(InvalidParameter):
        simulate(trace, static, "fifo", autoscaling=True)


def test_an_idle_gap_is_released_and_the_next_job_waits_for_start_up() -> None:
    f = parse_fleet(fleet(count=1, autoscale="{idle_timeout_s: 100, startup_s: 250, backlog_s: 900}"))
    trace = [job(0, 0.0, priority="interactive"), job(1, 5000.0, priority="interactive")]
    ours = simulate(trace, f, "reelfoundry")
    base = simulate(trace, f, "fifo")
    run = 3 + 0.02 * 40 * 121 * 768 * 512 / 1e6  # the ltx-video card's H100 figures
    # released 100 s after the first job, acquired again when the second arrives, ready 250 s later
    assert (ours["releases"], ours["acquisitions"]) == (1, 1)
    assert ours["p95_wait_s"]["interactive"] == pytest.approx(0.95 * 250, rel=1e-3)
    assert ours["span_s"] == pytest.approx(5000 + 250 + run, rel=1e-6)
    assert ours["held_device_s"] == pytest.approx(run + 100 + 250 + run, rel=1e-6)
    assert ours["startup_device_s"] == pytest.approx(250)
    assert ours["cost_usd"] == pytest.approx(ours["held_device_s"] * 6.88 / 3600, rel=1e-3)
    assert ours["utilization"] == pytest.approx(2 * run / ours["held_device_s"], abs=1e-4)
    assert ours["fleet_utilization"] == pytest.approx(2 * run / ours["span_s"], abs=1e-4)
    assert base["held_device_s"] == pytest.approx(base["span_s"]) and base["p95_wait_s"]["interactive"] == 0
    # the same trace with the fleet kept static: no start-up wait, the whole span paid
    static = simulate(trace, f, "reelfoundry", autoscaling=False)
    assert static["held_device_s"] == pytest.approx(static["span_s"]) and static["acquisitions"] == 0


def test_autoscaling_is_deterministic_and_cheaper_on_a_shipped_fleet() -> None:
    jobs = jobs_from_records(gen_trace(400, seed=9))
    f = load_fleet(EXAMPLES / "mixed.yaml")
    a, b = simulate(jobs, f, "reelfoundry"), simulate(jobs, f, "reelfoundry")
    assert a == b and a["acquisitions"] > 0 and a["releases"] > 0
    static = simulate(jobs, f, "reelfoundry", autoscaling=False)
    assert a["cost_usd"] < static["cost_usd"] and a["held_device_s"] < static["held_device_s"]
    assert a["jobs_completed"] == static["jobs_completed"] == 400


def test_timeline_records_held_devices(tmp_path: Path) -> None:
    from reelfoundry.scheduling import plot_timeline

    tl = Timeline()
    simulate(gen_trace(200, seed=1), load_fleet(EXAMPLES / "mixed.yaml"), "reelfoundry", timeline=tl)
    assert len(tl.held) == len(tl.t) and tl.held[0] == 1.0 and min(tl.held) < 1.0
    assert plot_timeline(tl, tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"


# --- batch wait and backfill ---------------------------------------------------------------------------


def test_a_partial_batch_waits_for_compatible_jobs_then_runs() -> None:
    f = parse_fleet(fleet(count=1))
    queue = [job(0, 0.0), job(1, 50.0)]
    assert schedule(queue, f, 100.0, batch_wait_s=300.0) == []
    assert batch_wait_ends(JobQueue(queue), 100.0, 300.0) == 300.0
    [p] = schedule(queue, f, 300.0, batch_wait_s=300.0)  # the oldest has waited 300 s
    assert len(p.jobs) == 2
    # a full batch, interactive work, or a deadline that cannot wait start at once
    assert schedule([job(i, 0.0) for i in range(4)], f, 100.0, batch_wait_s=300.0) != []
    assert schedule([job(0, 0.0, priority="interactive")], f, 100.0, batch_wait_s=300.0) != []
    assert schedule([job(0, 0.0, deadline=400.0)], f, 100.0, batch_wait_s=300.0) == []  # 300 + 81 s fits
    assert schedule([job(0, 0.0, deadline=350.0)], f, 100.0, batch_wait_s=300.0) != []
    assert schedule(queue, f, 100.0) != []  # default: no waiting


def test_backfill_gives_a_free_cpu_to_a_template_deep_in_the_queue() -> None:
    f = parse_fleet(
        "nodes:\n"
        "  - {name: g, count: 1, device: H100, provider: aws, pricing_model: on-demand, region: us-east-1}\n"
        "  - {name: cpu, count: 1, device: cpu, provider: aws, pricing_model: on-demand, region: us-east-1}\n"
    )
    gpu_work = [
        job(i, float(i), model="hunyuan-video", num_frames=129, width=960, height=544, steps=30) for i in range(8)
    ]
    template = job(99, 50.0, model="template", num_frames=120, width=640, height=360, steps=1)
    busy = {"g-0": 1000.0}
    placed = schedule([*gpu_work, template], f, 60.0, busy_until=busy)
    assert [(p.slot, p.jobs[0].id) for p in placed] == [("cpu-0", 99)]
    assert schedule([*gpu_work, template], f, 60.0, busy_until=busy, backfill=False) == []


def test_queue_groups_count_by_batch_key() -> None:
    q = JobQueue([job(0), job(1), job(2, priority="interactive", deadline=90.0), job(3, num_frames=65)])
    groups = {g[0][1]: g[1:] for g in q.groups()}
    assert groups == {121: (1, 2, 90.0), 65: (0, 1, float("inf"))}
    q.remove(2)
    assert {g[0][1]: g[1:3] for g in q.groups()} == {121: (0, 2), 65: (0, 1)}
    assert q.first(job(0).batch_key) == job(0)
    with pytest.raises(ValueError):
        q.push(job(0))


def test_shipped_fleets_parse_with_autoscale_defaults() -> None:
    for path in EXAMPLES.glob("*.yaml"):
        f = load_fleet(path)
        assert f.elastic
        assert sum(len(u.slots) for u in f.units) == len(f.slots)
        assert dataclasses.replace(f, autoscale=Autoscale()).units == f.units
