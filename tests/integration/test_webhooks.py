"""Webhooks through a real server: Standard Webhooks signatures, retries, and receivers that misbehave."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from receivers import RawReceiver, huge_answer, trickle, wait_for
from server import Server, free_port, server_env, wait_state
from standardwebhooks.webhooks import Webhook

LOCAL_RECEIVERS = json.dumps(["127.0.0.1"])


class Receiver:
    """A local HTTP receiver that answers 503 until ``up`` is set, and records what it accepts."""

    def __init__(self) -> None:
        self.port = free_port()
        self.up = False
        self.refused = 0
        self.accepted: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if not receiver.up:
                    receiver.refused += 1
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.accepted.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_receiver_down_then_up_gets_every_event_verified_with_standardwebhooks(tmp_path: Path) -> None:
    receiver = Receiver()
    env = server_env(webhook_backoff_base_s=0.2, webhook_backoff_max_s=1, webhook_allowed_hosts=LOCAL_RECEIVERS)
    srv = Server(tmp_path / "data", env).start()
    try:
        with srv.client() as c:
            secret = c.get("/v1/webhooks/secret").json()["secret"]
            # A name that resolves nowhere is refused up front, not retried for hours.
            poison = "http://" + "a" * 70 + ".example/hook"
            bad = c.post("/v1/jobs", json={"prompt": "fine", "model": "faulty", "webhook_url": poison})
            assert bad.status_code == 422 and bad.json()["parameter"] == "webhook_url", bad.text
            job = c.post("/v1/jobs", json={"prompt": "fine", "model": "faulty", "webhook_url": receiver.url}).json()
            wait_state(c, job["id"], {"succeeded"})
            wait_for(lambda: receiver.refused >= 6, what="retries of a receiver that answers 503")
            log = c.get("/v1/webhooks/deliveries").json()["items"]
            assert all(d["state"] == "pending" for d in log)
            assert {d["last_status"] for d in log} == {503}
            assert {d["url"] for d in log} == {receiver.url} and {d["receiver"] for d in log} == {
                f"127.0.0.1:{receiver.port}"
            }
            receiver.up = True
            wait_for(lambda: len({h["webhook-id"] for h, _ in receiver.accepted}) >= 3, what="deliveries")

            def all_delivered() -> bool:
                log = c.get("/v1/webhooks/deliveries", params={"limit": 200}).json()["items"]
                return {d["state"] for d in log} == {"delivered"}

            wait_for(all_delivered, what="the log to record the deliveries")
            log = c.get("/v1/webhooks/deliveries", params={"limit": 200}).json()["items"]
            assert min(d["attempts"] for d in log) >= 2
    finally:
        srv.stop()
        receiver.httpd.shutdown()
    types = set()
    for headers, body in receiver.accepted:
        event = Webhook(secret).verify(body, headers)
        assert event["job_id"] == job["id"]
        assert headers["webhook-id"] in {d["id"] for d in log}
        types.add(event["type"])
    assert types == {"job.queued", "job.running", "job.succeeded"}


def test_default_settings_refuse_a_loopback_receiver(tmp_path: Path) -> None:
    receiver = Receiver()
    srv = Server(tmp_path / "data", server_env()).start()
    try:
        with srv.client() as c:
            for url in (receiver.url, f"http://0x7f000001:{receiver.port}/", f"http://[::1]:{receiver.port}/"):
                r = c.post("/v1/jobs", json={"prompt": "fine", "model": "faulty", "webhook_url": url})
                assert r.status_code == 422 and r.json()["parameter"] == "webhook_url", r.text
            assert c.get("/v1/jobs").json()["items"] == []
    finally:
        srv.stop()
        receiver.httpd.shutdown()
    assert receiver.accepted == [] and receiver.refused == 0


def test_huge_answers_cost_no_memory_and_a_trickling_receiver_delays_no_one_else(tmp_path: Path) -> None:
    """Tenant A's receivers answer 300 MB bodies or trickle a byte every 2 s; tenant B's deliveries go on."""
    stop = threading.Event()
    sent: list[int] = []
    huge = RawReceiver(huge_answer(300 * 1024 * 1024, sent))
    slow = RawReceiver(trickle(2.0, stop))
    normal = Receiver()
    normal.up = True
    env = server_env(webhook_allowed_hosts=LOCAL_RECEIVERS, webhook_timeout_s=60, webhook_concurrency_per_receiver=2)
    srv = Server(tmp_path / "data", env).start()
    try:
        assert srv.proc is not None
        with srv.client() as a:
            b_key = a.post("/v1/keys", json={"name": "b", "role": "creator", "tenant": "tenant-b"}).json()["secret"]
            baseline = _rss_kib(srv.proc.pid)
            for _ in range(3):
                a.post("/v1/jobs", json={"prompt": "x", "model": "faulty", "webhook_url": huge.url})
            for _ in range(4):
                a.post("/v1/jobs", json={"prompt": "x", "model": "faulty", "webhook_url": slow.url})
            wait_for(lambda: len(sent) >= 3, timeout=60, what="three huge answers")
            wait_for(lambda: slow.connections >= 2, what="the slow receiver's share of connections")
            grown_mib = (_rss_kib(srv.proc.pid) - baseline) / 1024
            with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {b_key}"}, timeout=30) as b:
                jobs = [
                    b.post("/v1/jobs", json={"prompt": "x", "model": "faulty", "webhook_url": normal.url}).json()
                    for _ in range(3)
                ]
                for job in jobs:
                    wait_state(b, job["id"], {"succeeded"})
                # Every one of B's events (queued, running, succeeded × 3) arrives while A's slow receiver
                # is still trickling its first answers.
                wait_for(lambda: len(normal.accepted) >= 9, what="tenant B's deliveries")
            slow_log = [
                d
                for d in a.get("/v1/webhooks/deliveries", params={"limit": 200}).json()["items"]
                if d["receiver"] == f"127.0.0.1:{slow.port}"
            ]
            assert slow_log and all(d["attempts"] == 0 for d in slow_log)
            assert slow.connections <= 2
            huge_log = [
                d
                for d in a.get("/v1/webhooks/deliveries", params={"limit": 200}).json()["items"]
                if d["receiver"] == f"127.0.0.1:{huge.port}"
            ]
            assert any(d["state"] == "delivered" and d["last_status"] == 200 for d in huge_log)
    finally:
        stop.set()
        srv.stop()
        huge.close()
        slow.close()
        normal.httpd.shutdown()
    # The server read a few KiB of each 300 MB answer and hung up; its memory did not follow the answers.
    assert all(n < 64 * 1024 * 1024 for n in sent), sent
    assert grown_mib < 50, f"server grew {grown_mib:.0f} MiB while receivers sent {sum(sent) >> 20} MiB"
