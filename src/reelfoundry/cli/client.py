"""The CLI's door to a server: every call goes through the typed client, failures become one-line errors.

:class:`reelfoundry.client.Client` does the work (the key, retries on 429/503 honouring Retry-After,
resumable checked downloads, the SSE stream with Last-Event-ID); this adapter hands commands plain JSON
to print and turns ApiError / NetworkError into :class:`CLIError` (exit 2 for the user's input, 1 else).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from pydantic import ValidationError

from reelfoundry.client import ApiError, IntegrityError, NetworkError
from reelfoundry.client import Client as ApiClient
from reelfoundry.errors import ReelFoundryError
from reelfoundry.schema import VideoRequest


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
    """Talks to one ReelFoundry server with one key, through :class:`reelfoundry.client.Client`."""

    def __init__(self, server: str, key: str, timeout: float = 30.0, max_retries: int = 3) -> None:
        self.server = server.rstrip("/")
        with self._errors():
            self.api = ApiClient(self.server, api_key=key, timeout=timeout, max_retries=max_retries)

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except ApiError as exc:
            raise CLIError(f"{exc.detail or exc.title} ({exc.status})", 2 if exc.status < 500 else 1) from None
        except NetworkError:
            raise CLIError(f"cannot reach the server at {self.server}; is `reelfoundry serve` running?", 1) from None
        except IntegrityError as exc:
            raise CLIError(str(exc), 1) from None
        except TimeoutError as exc:
            raise CLIError(str(exc), 1) from None
        except httpx.InvalidURL as exc:
            raise CLIError(f"--server {self.server!r} is not a usable URL: {exc}") from None
        except httpx.HTTPError as exc:  # e.g. an answer that cannot be decoded
            raise CLIError(f"the server at {self.server} answered something unreadable: {exc}", 1) from None
        except (ValueError, ValidationError) as exc:  # not JSON, or not the API's shape: probably not a ReelFoundry
            raise CLIError(f"the server at {self.server} did not answer as a ReelFoundry API: {exc}", 1) from None

    def json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> Any:
        """Send a request and decode the JSON answer; CLIError with the problem's detail on an error."""
        with self._errors():
            return self.api.request(method, path, params=params, json=json, headers=headers, content=content).json()

    def submit(self, request: VideoRequest) -> dict[str, Any]:
        """Submit a job (with an Idempotency-Key, so a retry after a lost answer makes no second job)."""
        with self._errors():
            return self.api.jobs.submit(request).model_dump(mode="json")

    def wait(self, job_id: str, on_event: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
        """Follow a job's events until it ends (``on_event`` gets each as JSON); the final job as JSON."""
        with self._errors():
            job = self.api.jobs.wait(job_id, on_progress=lambda event: on_event(event.model_dump(mode="json")))
        return job.model_dump(mode="json")

    def download(self, asset_id: str, out: Path) -> int:
        """Download an asset's content to ``out`` (resumed if the connection drops, checked against its
        SHA-256, written atomically); the bytes written."""
        with self._errors():
            try:
                return self.api.assets.download(asset_id, out).stat().st_size
            except OSError as exc:
                raise CLIError(f"cannot write {out}: {exc.strerror}") from None
