"""The composition root: builds every component from one Settings object."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from reelfoundry.assets.storage import LocalStorage
from reelfoundry.config import Settings
from reelfoundry.events.notify import ChangeNotifier
from reelfoundry.events.webhooks import WebhookDispatcher
from reelfoundry.execution.engine import Engine
from reelfoundry.execution.executor import LocalExecutor
from reelfoundry.ids import new_id
from reelfoundry.portfolio.registry import Portfolio
from reelfoundry.schema import Role
from reelfoundry.store import Database
from reelfoundry.store import keys as keystore

log = logging.getLogger(__name__)


def write_secret(path: Path, value: str) -> None:
    """Write a secret file readable only by its owner (created 0600, never world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")


class Platform:
    """Database, storage, portfolio, engine and webhook dispatcher of one server."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.db = Database(settings.resolved_database_url)
        self.changes = ChangeNotifier()
        self.db.on_commit(self.changes.notify)
        self.storage = LocalStorage(settings.media_dir)
        self.portfolio = Portfolio(settings.extra_models)
        self.principals = keystore.PrincipalCache(settings.auth_cache_s)
        self.engine: Engine | None = None
        self.webhooks: WebhookDispatcher | None = None

    @property
    def node(self) -> str:
        """This data dir's node id, made once and kept (so a restart knows its own orphans)."""
        path = self.settings.data_dir / "node.id"
        if not path.exists():
            path.write_text(new_id() + "\n")
        return path.read_text().strip()

    def bootstrap(self) -> None:
        """Migrate, and on a fresh data dir create the operator tenant and its admin key file."""
        self.db.migrate()
        key_path = self.settings.admin_key_path
        if key_path.exists():
            return
        with self.db.write() as session:
            tenant = keystore.get_or_create_tenant(session, keystore.OPERATOR_TENANT, is_operator=True)
            _, token = keystore.create_key(session, tenant, "bootstrap-admin", Role.admin)
        write_secret(key_path, token)
        log.info("created admin key in %s", key_path)

    def start(self) -> None:
        """Bootstrap, then start the engine (if this server runs jobs) and the webhook dispatcher."""
        self.bootstrap()
        if self.settings.worker_slots > 0:
            executor = LocalExecutor(self.settings.worker_slots, self.settings.job_timeout_s)
            self.engine = Engine(self.settings, self.db, self.portfolio, self.storage, executor, self.node)
            self.engine.start()
        self.webhooks = WebhookDispatcher(self.settings, self.db)
        self.webhooks.start()

    def stop(self) -> None:
        """Stop background work and close connections."""
        if self.engine is not None:
            self.engine.stop()
        if self.webhooks is not None:
            self.webhooks.stop()
        self.db.dispose()
