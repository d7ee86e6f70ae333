"""Webhooks reach a receiver that is down at first: signed, retried, delivered at least once."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from server import Server, free_port, server_env, wait_state


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


def test_receiver_down_then_up_gets_every_event_signed(tmp_path: Path) -> None:
    receiver = Receiver()
    srv = Server(tmp_path / "data", server_env(webhook_backoff_base_s=0.2, webhook_backoff_max_s=1)).start()
    try:
        with srv.client() as c:
            secret = c.get("/v1/webhooks/secret").json()["secret"]
            # A URL pydantic accepts but no HTTP client can use: its failures must not block anyone else.
            poison = "http://" + "a" * 70 + ".example/hook"
            bad = c.post("/v1/jobs", json={"prompt": "fine", "model": "faulty", "webhook_url": poison}).json()
            job = c.post("/v1/jobs", json={"prompt": "fine", "model": "faulty", "webhook_url": receiver.url}).json()
            wait_state(c, job["id"], {"succeeded"})
            deadline = time.monotonic() + 20
            while receiver.refused < 6:
                assert time.monotonic() < deadline, "dispatcher did not retry"
                time.sleep(0.05)
            log = c.get("/v1/webhooks/deliveries").json()["items"]
            assert all(d["state"] == "pending" for d in log)
            assert {d["last_status"] for d in log if d["job_id"] == job["id"]} == {503}
            receiver.up = True
            while len({h["reelfoundry-delivery"] for h, _ in receiver.accepted}) < 3:
                assert time.monotonic() < deadline + 20, "deliveries never arrived"
                time.sleep(0.05)
            # The receiver answers before the dispatcher records the delivery: wait for the log to catch up.
            while True:
                log = c.get("/v1/webhooks/deliveries", params={"limit": 200}).json()["items"]
                good = [d for d in log if d["job_id"] == job["id"]]
                if {d["state"] for d in good} == {"delivered"} or time.monotonic() > deadline + 30:
                    break
                time.sleep(0.05)
            assert {d["state"] for d in good} == {"delivered"} and min(d["attempts"] for d in good) >= 2
            poisoned = [d for d in log if d["job_id"] == bad["id"]]
            assert poisoned and all(d["state"] == "pending" and d["attempts"] >= 1 for d in poisoned)
            assert all(d["last_error"] and d["last_status"] is None for d in poisoned)
    finally:
        srv.stop()
        receiver.httpd.shutdown()
    types = set()
    for headers, body in receiver.accepted:
        ts = headers["reelfoundry-timestamp"]
        expected = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
        assert headers["reelfoundry-signature"] == f"v1={expected}"
        event = json.loads(body)
        assert event["job_id"] == job["id"]
        types.add(event["type"])
    assert types == {"job.queued", "job.running", "job.succeeded"}
