"""Shared fixtures: databases (SQLite and the real PostgreSQL), tenants and keys."""

from __future__ import annotations

import os
import shutil
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


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once per session; each test's ``database`` starts from a copy."""
    path = tmp_path_factory.mktemp("template") / "migrated.db"
    db = Database(f"sqlite:///{path}")
    db.migrate()
    db.dispose()  # the last connection checkpoints and removes the WAL: the main file holds everything
    assert not path.with_name(path.name + "-wal").exists()
    return path


@pytest.fixture(scope="session")
def pg_template(pg_admin: str) -> Iterator[str]:
    """A PostgreSQL database migrated once per session; each test's ``database`` is created from it."""
    name = f"rf_template_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_admin, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    db = Database(make_url(pg_admin).set(database=name).render_as_string(hide_password=False))
    db.migrate()
    db.dispose()  # CREATE DATABASE … TEMPLATE needs the template without connections
    yield name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated database, on SQLite and on the real PostgreSQL: a copy of the session's migrated template
    (the migrations run once per session, not once per test), brought to head again, which finds nothing to do."""
    if request.param == "sqlite":
        path = tmp_path / "test.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
    else:
        pg_admin, template = request.getfixturevalue("pg_admin"), request.getfixturevalue("pg_template")
        name = f"rf_test_{uuid.uuid4().hex[:12]}"
        admin = create_engine(pg_admin, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))

        def drop() -> None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()

        request.addfinalizer(drop)
        url = make_url(pg_admin).set(database=name).render_as_string(hide_password=False)
    db = Database(url)
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
