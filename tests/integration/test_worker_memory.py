"""A job that needs more memory than its worker may hold fails saying so; the server and the next job go on."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from server import Server, server_env, wait_state

LIMIT_MB = 256


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose worker may hold LIMIT_MB MiB."""
    data_dir = tmp_path_factory.mktemp("memory") / "data"
    srv = Server(data_dir, server_env(job_timeout_s=60, worker_memory_limit_mb=LIMIT_MB)).start()
    yield srv
    srv.stop()


@pytest.mark.parametrize(
    "prompt", [f"hog:{LIMIT_MB * 2}", f"hog-shared:{LIMIT_MB * 2}"], ids=["allocation-refused", "watchdog"]
)
def test_a_job_over_the_worker_memory_limit_fails_and_the_server_goes_on(limited: Server, prompt: str) -> None:
    with limited.client() as c:
        job = c.post("/v1/jobs", json={"prompt": prompt, "model": "faulty"}).json()
        failed = wait_state(c, job["id"], {"failed", "succeeded"})

        assert failed["state"] == "failed"
        assert failed["error"]["detail"] == (
            f"the job needed more memory than the worker's limit of {LIMIT_MB} MiB (REELFOUNDRY_WORKER_MEMORY_LIMIT_MB)"
        )
        assert failed["error"]["type"].endswith("/backend-error")
        assert httpx.get(f"{limited.url}/healthz", timeout=5).status_code == 200
        ok = c.post("/v1/jobs", json={"prompt": "fine", "model": "faulty"}).json()
        assert wait_state(c, ok["id"], {"failed", "succeeded"})["state"] == "succeeded"
