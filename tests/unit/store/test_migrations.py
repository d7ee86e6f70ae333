"""Migrations create exactly the schema the tables declare, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from reelfoundry.store import Database
from reelfoundry.store.tables import Base


def test_migrations_match_tables(database: Database) -> None:
    with database.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_migrate_twice_is_a_no_op(database: Database) -> None:
    database.migrate()
