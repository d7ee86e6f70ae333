"""Engine, sessions and migrations for SQLite (embedded) and PostgreSQL.

Writes on SQLite start with ``BEGIN IMMEDIATE`` so two writers queue on the
busy timeout instead of failing when a read transaction tries to upgrade.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from reelfoundry.errors import ConfigurationError
from reelfoundry.localfiles import private_file

MIGRATIONS = Path(__file__).parent / "migrations"


def _sqlite_hooks(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when transactions begin.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("rf_write") else "BEGIN")


def make_engine(url: str) -> Engine:
    """An engine for ``url`` with the settings this store relies on."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            # SQLite would create it 0644 under umask 022; its WAL and shared-memory files copy this mode.
            private_file(Path(parsed.database))
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=8, max_overflow=16
        )
        _sqlite_hooks(engine)
        return engine
    if parsed.get_backend_name() == "postgresql":
        return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
    raise ConfigurationError(
        f"database_url: unsupported database {parsed.get_backend_name()!r}; use sqlite or postgresql"
    )


#: The PostgreSQL advisory lock key that serialises migrations ("reelfoundry" folded into a bigint).
MIGRATION_LOCK = 0x7265656C66


class Database:
    """Owns the engine; hands out read and write sessions."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.dialect = self.engine.dialect.name
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(self.engine.execution_options(rf_write=True), expire_on_commit=False)
        self._commit_hooks: list[Callable[[], None]] = []
        # SQLite has one writer at a time; queueing writers on a lock here is FIFO and
        # wakes at once, where SQLite's busy handler sleeps and retries (long tail latencies).
        self._write_lock = threading.Lock() if self.dialect == "sqlite" else None

    def on_commit(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` after every committed write (used to wake event streams without polling)."""
        self._commit_hooks.append(hook)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for queries; closed (its transaction rolled back) at the end, objects stay readable."""
        with self._read() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back on error."""
        with self._write_lock or nullcontext(), self._write() as session, session.begin():
            yield session
        for hook in self._commit_hooks:
            hook()

    def migrate(self) -> None:
        """Bring the schema to the newest migration (the prestart step).

        On PostgreSQL under a transaction-scoped advisory lock: processes starting together (API replicas,
        a scheduler) migrate one after the other, and the later ones find the schema current."""
        with self.engine.begin() as conn:
            if self.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            cfg = alembic_config(self.url)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def ping(self) -> None:
        """Raise if the database cannot answer a trivial query."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        """Close pooled connections."""
        self.engine.dispose()


def alembic_config(url: str) -> Config:
    """Alembic configuration pointing at the packaged migrations."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg
