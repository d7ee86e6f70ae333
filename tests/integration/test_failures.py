"""Backends that raise, crash or hang fail their job; the server keeps serving. Cancellation."""

from __future__ import annotations

import pytest
from server import Server, sse_events, wait_state


@pytest.mark.parametrize(
    ("prompt", "detail"),
    [
        ("raise", "RuntimeError: the model exploded on purpose"),
        ("crash", "worker process crashed (exit code 17)"),
    ],
)
def test_backend_failure_fails_the_job_and_server_goes_on(server: Server, prompt: str, detail: str) -> None:
    with server.client() as c:
        job = c.post("/v1/jobs", json={"prompt": prompt, "model": "faulty"}).json()
        failed = wait_state(c, job["id"], {"failed", "succeeded"})
        assert failed["state"] == "failed"
        assert detail in failed["error"]["detail"]
        assert failed["error"]["type"].endswith("/backend-error")
        ok = c.post("/v1/jobs", json={"prompt": "fine", "model": "faulty"}).json()
        assert wait_state(c, ok["id"], {"failed", "succeeded"})["state"] == "succeeded"


def test_hanging_backend_is_killed_at_the_timeout(tmp_path_factory: pytest.TempPathFactory) -> None:
    from server import server_env

    srv = Server(tmp_path_factory.mktemp("hang") / "data", server_env(job_timeout_s=2)).start()
    try:
        with srv.client() as c:
            job = c.post("/v1/jobs", json={"prompt": "hang", "model": "faulty"}).json()
            failed = wait_state(c, job["id"], {"failed", "succeeded"}, timeout=30)
            assert failed["state"] == "failed" and "timeout of 2 s" in failed["error"]["detail"]
            ok = c.post("/v1/jobs", json={"prompt": "fine", "model": "faulty"}).json()
            assert wait_state(c, ok["id"], {"failed", "succeeded"})["state"] == "succeeded"
    finally:
        srv.stop()


def test_cancel_queued_and_running(server: Server) -> None:
    with server.client() as c:
        running = c.post("/v1/jobs", json={"prompt": "slow:20", "model": "faulty", "num_frames": 40}).json()
        queued = c.post("/v1/jobs", json={"prompt": "fine", "model": "faulty"}).json()
        wait_state(c, running["id"], {"running"})
        r = c.post(f"/v1/jobs/{queued['id']}/cancel")
        assert r.status_code == 202 and r.json()["state"] == "cancelled"
        r = c.post(f"/v1/jobs/{running['id']}/cancel")
        assert r.status_code == 202 and r.json()["cancel_requested"] is True
        types = [ev["type"] for ev in sse_events(c, running["id"])]
        assert types[-2:] == ["job.cancel_requested", "job.cancelled"]
        final = c.get(f"/v1/jobs/{running['id']}").json()
        assert final["state"] == "cancelled" and final["asset_id"] is None and final["progress"] < 1
        again = c.post(f"/v1/jobs/{running['id']}/cancel")
        assert again.status_code == 409 and again.headers["content-type"] == "application/problem+json"


def test_cancel_reaches_a_backend_stuck_inside_a_step(server: Server) -> None:
    with server.client() as c:
        job = c.post("/v1/jobs", json={"prompt": "hang", "model": "faulty"}).json()
        wait_state(c, job["id"], {"running"})
        for _ in range(5):  # repeated cancels are fine and do not pile up
            assert c.post(f"/v1/jobs/{job['id']}/cancel").status_code == 202
        final = wait_state(c, job["id"], {"cancelled", "failed", "succeeded"}, timeout=30)
        assert final["state"] == "cancelled"
        ok = c.post("/v1/jobs", json={"prompt": "fine", "model": "faulty"}).json()
        assert wait_state(c, ok["id"], {"failed", "succeeded"})["state"] == "succeeded"
