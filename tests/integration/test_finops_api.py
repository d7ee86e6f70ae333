"""Costs, budgets and reconciliation over HTTP, and the budget race on PostgreSQL."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from server import Server, server_env, wait_state

COST_KEYS = {"total_usd", "compute_usd", "energy_kwh", "co2e_kg", "device_seconds"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir: Path = tmp_path_factory.mktemp("finops") / "data"
    srv = Server(data_dir, server_env(job_timeout_s=20, cancel_grace_s=2)).start()
    yield srv
    srv.stop()


def submit(c: httpx.Client, **body: Any) -> httpx.Response:
    return c.post("/v1/jobs", json={"prompt": "Priced", "model": "template", "num_frames": 6, **body})


def test_a_finished_job_carries_its_cost(server: Server) -> None:
    with server.client() as c:
        job = submit(c, labels={"project": "costs"}).json()
        assert Decimal(job["estimated_usd"]) > 0 and job["cost"] is None
        done = wait_state(c, job["id"], {"succeeded", "failed"})
        assert done["state"] == "succeeded"
        cost = done["cost"]
    assert cost.keys() >= COST_KEYS
    for key in ("total_usd", "compute_usd", "energy_kwh", "co2e_kg", "idle_usd", "storage_usd"):
        assert isinstance(cost[key], str) and Decimal(cost[key]) >= 0, key
    assert cost["device_seconds"] > 0 and Decimal(cost["compute_usd"]) > 0
    total = sum(Decimal(cost[k]) for k in ("compute_usd", "idle_usd", "storage_usd", "egress_usd"))
    assert Decimal(cost["total_usd"]) == total
    # compute = device-seconds × the local CPU's $/hour (the catalog's c7i.large stand-in) × share 1
    expected = Decimal(str(cost["device_seconds"])) * Decimal("0.08925") / 3600
    assert abs(Decimal(cost["compute_usd"]) - expected) < Decimal("1e-9")
    assert cost["device"] == "cpu" and cost["provider"] == "local" and cost["energy_method"] in {"rapl", "model"}
    assert cost["project"] == "costs" and cost["model"] == "template" and cost["state"] == "succeeded"
    assert cost["stored_bytes"] > 0 and cost["video_seconds"] > 0


def test_failed_and_cancelled_jobs_are_charged_and_release_their_reservation(server: Server) -> None:
    with server.client() as c:
        budget = c.post(
            "/v1/budgets", json={"name": "recon", "scope": "project", "scope_value": "recon", "limit_usd": "100"}
        ).json()
        failed = c.post("/v1/jobs", json={"prompt": "raise", "model": "faulty", "labels": {"project": "recon"}})
        slow = c.post("/v1/jobs", json={"prompt": "slow:30", "model": "faulty", "labels": {"project": "recon"}})
        queued = submit(c, labels={"project": "recon"}, priority="batch")
        assert failed.status_code == slow.status_code == queued.status_code == 201
        mid = c.get(f"/v1/budgets/{budget['id']}").json()
        assert Decimal(mid["reserved_usd"]) > 0
        wait_state(c, slow.json()["id"], {"running"})
        assert c.post(f"/v1/jobs/{queued.json()['id']}/cancel").status_code == 202
        assert c.post(f"/v1/jobs/{slow.json()['id']}/cancel").status_code == 202
        ends = [wait_state(c, j.json()["id"], {"succeeded", "failed", "cancelled"}) for j in (failed, slow, queued)]
        assert [e["state"] for e in ends] == ["failed", "cancelled", "cancelled"]
        for end in ends:
            assert end["cost"] is not None and end["cost"]["state"] == end["state"]
        assert ends[1]["cost"]["device_seconds"] > 0  # it ran before it was cancelled: charged
        assert Decimal(ends[2]["cost"]["total_usd"]) == 0  # cancelled in the queue: never ran
        after = c.get(f"/v1/budgets/{budget['id']}").json()
    assert Decimal(after["reserved_usd"]) == 0
    assert Decimal(after["spent_usd"]) == sum(Decimal(e["cost"]["total_usd"]) for e in ends)


def test_a_hard_budget_refuses_with_a_402_naming_it_and_a_soft_one_warns(server: Server) -> None:
    with server.client() as c:
        hard = c.post(
            "/v1/budgets",
            json={"name": "tiny", "scope": "campaign", "scope_value": "tiny", "period": "day", "limit_usd": "0.000001"},
        )
        assert hard.status_code == 201, hard.text
        r = submit(c, labels={"campaign": "tiny"})
        assert r.status_code == 402 and r.headers["content-type"] == "application/problem+json"
        body = r.json()
        assert body["type"].endswith("/budget-exceeded") and body["budget"] == "tiny"
        assert body["budget_id"] == hard.json()["id"] and body["period"] == "day"
        assert Decimal(body["remaining_usd"]) == Decimal("0.000001") < Decimal(body["estimate_usd"])
        assert "tiny" in body["detail"] and "left" in body["detail"]
        assert submit(c, labels={"campaign": "other"}).status_code == 201  # other campaigns are not limited

        soft = c.post(
            "/v1/budgets",
            json={
                "name": "watch",
                "scope": "campaign",
                "scope_value": "watch",
                "limit_usd": "0.000001",
                "enforcement": "soft",
            },
        ).json()
        job = submit(c, labels={"campaign": "watch"})
        assert job.status_code == 201
        events = c.get(f"/v1/jobs/{job.json()['id']}/events", timeout=30).text
        assert "event: budget.exceeded" in events and soft["id"] in events
        second = submit(c, labels={"campaign": "watch"}).json()
        assert "budget.exceeded" not in c.get(f"/v1/jobs/{second['id']}/events", timeout=30).text  # once a period
        capped = submit(c, constraints={"max_cost_usd": "0.0000001"})
        assert capped.status_code == 422 and capped.json()["parameter"] == "constraints.max_cost_usd"


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "limit_usd": "-1"},
        {"name": "x", "limit_usd": "1", "scope": "project"},
        {"name": "x", "limit_usd": "1", "scope_value": "p"},
        {"name": "x", "limit_usd": "1", "period": "fortnight"},
        {"name": "x", "limit_usd": "1", "enforcement": "maybe"},
        {"name": "x", "limit_usd": "lots"},
        {"name": "x", "limit_usd": "1000000000"},
    ],
)
def test_bad_budgets_are_422(server: Server, body: dict[str, Any]) -> None:
    with server.client() as c:
        r = c.post("/v1/budgets", json=body)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", r.text


def test_usage_over_http_groups_filters_and_refuses_bad_parameters(server: Server) -> None:
    with server.client() as c:
        wait_state(c, submit(c, labels={"project": "usage"}).json()["id"], {"succeeded"})
        report = c.get("/v1/usage", params={"by": "model,day"}).json()
        assert report["by"] == ["model", "day"] and report["rows"]
        row = report["rows"][0]
        assert {"model", "day", "jobs", "total_usd", "energy_kwh", "co2e_kg", "cost_per_video_usd"} <= row.keys()
        assert "project" not in row and isinstance(row["total_usd"], str)
        csv = c.get("/v1/usage", params={"by": "project", "format": "csv"})
        assert csv.headers["content-type"].startswith("text/csv") and csv.text.startswith("project,jobs,")
        future = c.get("/v1/usage", params={"from": "2099-01-01"}).json()
        assert future["rows"] == []
        for params, name in [
            ({"by": "colour"}, "by"),
            ({"from": "yesterday"}, "from"),
            ({"from": "2026-11-02", "to": "2026-11-01"}, "to"),
            ({"format": "xml"}, "format"),
            ({"to": "9999-12-31"}, "to"),
            ({"from": "0001-01-01T00:00:00+01:00"}, "from"),
        ]:
            r = c.get("/v1/usage", params=params)
            assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", params
            assert r.json()["parameter"] == name, r.json()
        assert c.get("/v1/usage", params={"all_tenants": "true"}).status_code == 200  # the operator's admin
        other = c.post("/v1/keys", json={"name": "o", "role": "admin", "tenant": "other-co"}).json()["secret"]
    with server.client(other) as o:
        assert o.get("/v1/usage", params={"all_tenants": "true"}).status_code == 403
        assert o.get("/v1/usage").json()["rows"] == []


@pytest.mark.postgres
def test_fifty_concurrent_submissions_never_overspend_a_nearly_spent_budget(tmp_path: Path, pg_url: str) -> None:
    # API only: the jobs stay queued, so every accepted job keeps its reservation.
    srv = Server(tmp_path / "data", server_env(database_url=pg_url, worker_slots=0)).start()
    try:
        with srv.client() as c:
            probe = submit(c, labels={"campaign": "probe"}).json()
            estimate = Decimal(probe["estimated_usd"])
            room = 7
            limit = (estimate * room + estimate / 2).quantize(Decimal("1e-10"))  # room for 7 jobs and a half
            budget = c.post(
                "/v1/budgets",
                json={"name": "race", "scope": "campaign", "scope_value": "race", "limit_usd": format(limit, "f")},
            )
            assert budget.status_code == 201, budget.text
            budget_id = budget.json()["id"]
        statuses: list[int] = []
        barrier = threading.Barrier(50)

        def one() -> None:
            with srv.client() as client:
                barrier.wait()
                statuses.append(submit(client, labels={"campaign": "race"}).status_code)

        threads = [threading.Thread(target=one) for _ in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert len(statuses) == 50 and set(statuses) <= {201, 402}
        assert statuses.count(201) == room
        with srv.client() as c:
            standing = c.get(f"/v1/budgets/{budget_id}").json()
        assert Decimal(standing["reserved_usd"]) == estimate * room <= limit
        assert Decimal(standing["remaining_usd"]) >= 0
    finally:
        srv.stop()


def test_served_bytes_are_charged_as_egress_at_the_providers_rate(tmp_path: Path) -> None:
    env = server_env(worker_provider="aws", worker_region="us-east-1", metrics_token="scrape-token-0123456789")
    srv = Server(tmp_path / "data", env).start()
    try:
        with srv.client() as c:
            done = wait_state(c, submit(c).json()["id"], {"succeeded", "failed"})
            assert done["cost"]["provider"] == "aws" and done["cost"]["carbon_region"] == "aws:us-east-1"
            whole = c.get(f"/v1/assets/{done['asset_id']}/content").content
            part = c.get(f"/v1/assets/{done['asset_id']}/content", headers={"Range": "bytes=0-99"}).content
            assert len(part) == 100
            cost = c.get(f"/v1/jobs/{done['id']}").json()["cost"]
        # With a metrics token, /metrics answers only the scraper that sends it.
        assert httpx.get(f"{srv.url}/metrics").status_code == 401
        assert httpx.get(f"{srv.url}/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        scraped = httpx.get(f"{srv.url}/metrics", headers={"Authorization": "Bearer scrape-token-0123456789"})
        assert scraped.status_code == 200 and "reelfoundry_cost_usd_total" in scraped.text
    finally:
        srv.stop()
    sent = len(whole) + 100
    assert cost["egress_bytes"] == sent
    assert Decimal(cost["egress_usd"]) == (Decimal(sent) / 10**9 * Decimal("0.09")).quantize(Decimal("1e-10"))
    parts = ("compute_usd", "idle_usd", "storage_usd", "egress_usd")
    assert Decimal(cost["total_usd"]) == sum(Decimal(cost[k]) for k in parts)


def test_metrics_parse_as_prometheus_text_and_carry_the_platforms_figures(server: Server) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    with server.client() as c:
        wait_state(c, submit(c, labels={"project": "metrics"}).json()["id"], {"succeeded"})
        c.post("/v1/budgets", json={"name": "observed", "limit_usd": "1000"})
    r = httpx.get(f"{server.url}/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    assert {
        "reelfoundry_jobs",
        "reelfoundry_job_queue_wait_seconds",
        "reelfoundry_job_run_seconds",
        "reelfoundry_device_utilisation",
        "reelfoundry_cost_usd",
        "reelfoundry_energy_kwh",
        "reelfoundry_co2e_kg",
        "reelfoundry_budget_remaining_usd",
    } <= families.keys()

    def sample(name: str, **labels: str) -> float:
        family = families[re.sub(r"_(total|count|sum|bucket)$", "", name)]
        match = [s for s in family.samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
        return float(match[0].value)

    assert sample("reelfoundry_jobs", state="succeeded") >= 1
    assert sample("reelfoundry_cost_usd_total", tenant="default", model="template") > 0
    assert sample("reelfoundry_energy_kwh_total", tenant="default", model="template") > 0
    assert sample("reelfoundry_job_run_seconds_count", model="template", outcome="succeeded") >= 1
    assert 0 < sample("reelfoundry_budget_remaining_usd", budget="observed") <= 1000
    assert 0 <= sample("reelfoundry_device_utilisation") <= 1


def test_job_stages_are_exported_as_otlp_traces_when_configured(tmp_path: Path) -> None:
    import http.server

    bodies: list[bytes] = []

    class Collector(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
            assert self.path == "/v1/traces"
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    receiver = http.server.HTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{receiver.server_address[1]}"
    srv = Server(tmp_path / "data", server_env(otlp_endpoint=endpoint)).start()
    try:
        with srv.client() as c:
            job = submit(c).json()
            wait_state(c, job["id"], {"succeeded"})
    finally:
        srv.stop()  # flushes the batch
        receiver.shutdown()
    payload = b"".join(bodies)
    for stage in (b"job.admit", b"job.queue", b"job.run", b"job.store"):
        assert stage in payload, stage
    assert job["id"].encode() in payload
