"""The database: tables, migrations and the queries every component shares."""

from reelfoundry.store.db import Database

__all__ = ["Database"]
