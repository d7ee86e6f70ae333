"""Shared fixtures: databases (SQLite and the real PostgreSQL), tenants and keys."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

# Nothing in the tests may reach a model hub; huggingface_hub reads this once, at its first import.
os.environ["HF_HUB_OFFLINE"] = "1"

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from reelfoundry.schema import Role
from reelfoundry.store import Database
from reelfoundry.store import keys as keystore

PG_ADMIN_URL = os.environ.get("REELFOUNDRY_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _pg_available() -> str | None:
    try:
        engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


@pytest.fixture(scope="session")
def pg_admin() -> str:
    """The PostgreSQL server URL; in CI a missing server fails the run instead of skipping."""
    problem = _pg_available()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is required in CI: {problem}")
        pytest.skip(f"PostgreSQL not reachable: {problem}")
    return PG_ADMIN_URL


@pytest.fixture
def pg_url(pg_admin: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    name = f"rf_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_admin, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(pg_admin).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs on SQLite and on the real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def database(db_url: str) -> Iterator[Database]:
    """A migrated database."""
    db = Database(db_url)
    db.migrate()
    yield db
    db.dispose()


@pytest.fixture
def tenant_ids(database: Database) -> tuple[str, str]:
    """Two tenants, A and B."""
    with database.write() as session:
        a = keystore.get_or_create_tenant(session, "tenant-a")
        b = keystore.get_or_create_tenant(session, "tenant-b")
        keystore.create_key(session, a, "a-admin", Role.admin)
        return a.id, b.id
