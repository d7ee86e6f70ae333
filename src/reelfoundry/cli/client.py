"""A small HTTP client for the CLI: finds the server and key, turns problems into errors."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from reelfoundry.errors import ReelFoundryError

FINAL_EVENTS = frozenset({"job.succeeded", "job.failed", "job.cancelled"})


class CLIError(ReelFoundryError):
    """Something the CLI reports on one line; ``exit_code`` 2 for the user's input, 1 otherwise."""

    def __init__(self, detail: str, exit_code: int = 2) -> None:
        super().__init__(detail)
        self.exit_code = exit_code


def find_key(data_dir: Path, explicit: str | None) -> str:
    """The API key: --api-key, else $REELFOUNDRY_API_KEY, else <data-dir>/admin.key."""
    if explicit:
        return explicit
    if os.environ.get("REELFOUNDRY_API_KEY"):
        return os.environ["REELFOUNDRY_API_KEY"]
    path = data_dir / "admin.key"
    try:
        return path.read_text().strip()
    except OSError:
        raise CLIError(f"no API key: pass --api-key, set REELFOUNDRY_API_KEY, or run where {path} exists") from None


class Client:
    """Talks to one ReelFoundry server with one key."""

    def __init__(self, server: str, key: str, timeout: float = 30.0) -> None:
        self.server = server.rstrip("/")
        self._http = httpx.Client(base_url=self.server, headers={"Authorization": f"Bearer {key}"}, timeout=timeout)

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """Send a request; CLIError with the problem's detail on a 4xx/5xx or no connection."""
        try:
            response = self._http.request(method, path, **kw)
        except httpx.ConnectError:
            raise CLIError(f"cannot reach the server at {self.server}; is `reelfoundry serve` running?", 1) from None
        except httpx.HTTPError as exc:
            raise CLIError(f"request to {self.server} failed: {exc}", 1) from None
        if response.status_code >= 400:
            raise CLIError(_problem_detail(response), 2 if response.status_code < 500 else 1)
        return response

    def json(self, method: str, path: str, **kw: Any) -> Any:
        """Send a request and decode the JSON answer."""
        return self.request(method, path, **kw).json()

    def events(self, job_id: str, retries: int = 60) -> Iterator[dict[str, Any]]:
        """Follow a job's SSE stream until its final event, reconnecting (Last-Event-ID) if the server restarts."""
        last = 0
        failures = 0
        while True:
            try:
                headers = {"Last-Event-ID": str(last)} if last else {}
                timeout = httpx.Timeout(30.0, read=None)
                with self._http.stream("GET", f"/v1/jobs/{job_id}/events", headers=headers, timeout=timeout) as r:
                    if r.status_code >= 400:
                        r.read()
                        raise CLIError(_problem_detail(r))
                    for line in r.iter_lines():
                        if line.startswith("data: "):
                            event = json.loads(line[6:])
                            last, failures = event["id"], 0
                            yield event
                            if event["type"] in FINAL_EVENTS:
                                return
            except httpx.HTTPError as exc:
                failures += 1
                if failures > retries:
                    raise CLIError(f"event stream from {self.server} broke: {exc}", 1) from None
            time.sleep(1.0)

    def download(self, path: str, out: Path) -> int:
        """Stream a download into ``out`` atomically; returns bytes written."""
        tmp = out.with_name(out.name + ".part")
        written = 0
        try:
            with self._http.stream("GET", path) as r:
                if r.status_code >= 400:
                    r.read()
                    raise CLIError(_problem_detail(r))
                with tmp.open("wb") as fh:
                    for chunk in r.iter_bytes():
                        fh.write(chunk)
                        written += len(chunk)
            tmp.replace(out)
        except OSError as exc:
            raise CLIError(f"cannot write {out}: {exc.strerror}") from None
        except httpx.HTTPError as exc:
            raise CLIError(f"download from {self.server} failed: {exc}", 1) from None
        finally:
            tmp.unlink(missing_ok=True)
        return written


def _problem_detail(response: httpx.Response) -> str:
    try:
        body = response.json()
        return f"{body.get('detail') or body.get('title')} ({response.status_code})"
    except ValueError:
        return f"server answered {response.status_code}"
