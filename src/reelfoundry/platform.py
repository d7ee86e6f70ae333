"""The composition root: builds every component from one Settings object."""

from __future__ import annotations

import fcntl
import functools
import logging
import os
from collections.abc import Callable

from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from reelfoundry.api.ratelimit import RateLimits
from reelfoundry.assets.delivery import DeliverySigner
from reelfoundry.assets.lifecycle import LifecycleLoop
from reelfoundry.assets.objectstore import ObjectStore
from reelfoundry.assets.stores import make_store
from reelfoundry.config import Settings
from reelfoundry.errors import ConfigurationError, ReelFoundryError
from reelfoundry.events.notify import ChangeNotifier
from reelfoundry.events.pgnotify import JobListener
from reelfoundry.events.webhooks import WebhookDispatcher, webhook_client
from reelfoundry.execution.engine import Engine
from reelfoundry.execution.executor import Executor, LocalExecutor
from reelfoundry.execution.leader import Leadership
from reelfoundry.finops.catalog import load_catalog
from reelfoundry.finops.meter import Rates
from reelfoundry.finops.rates import worker_rates
from reelfoundry.governance.policy import ContentPolicy
from reelfoundry.ids import new_id
from reelfoundry.localfiles import private_dir, write_private
from reelfoundry.observability.metrics import Metrics
from reelfoundry.observability.tracing import Tracer
from reelfoundry.outbound import OutboundPolicy
from reelfoundry.portfolio.registry import Portfolio
from reelfoundry.provenance.credentials import SigningCredentials, configured_credentials
from reelfoundry.schema import Role
from reelfoundry.server_secret import derive, load_server_secret
from reelfoundry.store import Database, audit
from reelfoundry.store import costs as coststore
from reelfoundry.store import keys as keystore
from reelfoundry.store.tables import ApiKeyRow

log = logging.getLogger(__name__)

#: What ``reelfoundry serve --role`` accepts: ``all`` is one machine doing everything (API, engine, loops);
#: ``api`` serves the HTTP API and UI and admits jobs, holding no state (any number of replicas);
#: ``scheduler`` is the elected engine plus the webhook dispatcher and audit sealer (one leads, others stand by);
#: ``worker`` runs an engine for this node's slots (claiming as an ``all`` node's does) without the API.
ROLES = ("all", "api", "scheduler", "worker")

#: The PostgreSQL advisory lock key under which one node creates the operator's first admin key.
BOOTSTRAP_LOCK = 0x7265656C67


class Platform:
    """Database, storage, portfolio, engine and webhook dispatcher of one server."""

    def __init__(self, settings: Settings, role: str = "all") -> None:
        if role not in ROLES:
            raise ConfigurationError(f"role {role!r}: use one of {', '.join(ROLES)}")
        self.settings = settings
        self.role = role
        #: The scheduler election (the ``scheduler`` role only): None where this process never leads.
        self.leader: Leadership | None = None
        private_dir(settings.data_dir)
        self.db = Database(settings.resolved_database_url)
        self.changes = ChangeNotifier()
        self.db.on_commit(self.changes.notify)
        self.storage: ObjectStore = make_store(settings, self.db)  # tiered when storage_tiering is on
        self.lifecycle: LifecycleLoop | None = None
        self.portfolio = Portfolio.from_settings(settings)
        self.policy = ContentPolicy.from_settings(settings)
        self.principals = keystore.PrincipalCache(settings.auth_cache_s)
        self.engine: Engine | None = None
        #: The LISTEN thread that wakes the engine on PostgreSQL (None elsewhere, or without an engine).
        self.listener: JobListener | None = None
        self.webhooks: WebhookDispatcher | None = None
        self._lock_fd: int | None = None
        self.sealer = audit.Sealer(self.db, settings.audit_seal_interval_s)

    @property
    def serves_api(self) -> bool:
        """Whether this process serves the /v1 API and the UI (every role serves /healthz, /readyz, /metrics)."""
        return self.role in ("all", "api")

    @property
    def runs_jobs(self) -> bool:
        """Whether this process runs an engine (it has worker slots and a role that runs jobs)."""
        return self.role in ("all", "scheduler", "worker") and self.settings.worker_slots > 0

    @property
    def runs_background(self) -> bool:
        """Whether this process runs the webhook dispatcher and the audit sealer."""
        return self.role in ("all", "scheduler")

    @property
    def exports_totals(self) -> bool:
        """Whether /metrics here includes the database-wide totals: on ``all``, and on the leading scheduler
        only, so a sum over replicas counts each once (API and worker processes export their own figures)."""
        if self.role == "all":
            return True
        return self.leader is not None and self.leader.is_leader

    @property
    def node(self) -> str:
        """This data dir's node id, made once and kept (so a restart knows its own orphans)."""
        path = self.settings.data_dir / "node.id"
        if not path.exists():
            write_private(path, new_id() + "\n", exclusive=False)
        return path.read_text().strip()

    @functools.cached_property
    def credentials(self) -> SigningCredentials:
        """The signing credentials (configured, or the data dir's development CA), read once."""
        return configured_credentials(self.settings)

    @functools.cached_property
    def secret(self) -> bytes:
        """The server's secret key (configured, or the data dir's), read once."""
        configured = self.settings.secret_key
        return load_server_secret(configured.get_secret_value() if configured else None, self.settings.data_dir)

    @functools.cached_property
    def delivery(self) -> DeliverySigner:
        """Signs and checks delivery URLs."""
        return DeliverySigner(derive(self.secret, "delivery"), self.settings.delivery_url_ttl_s)

    def bootstrap(self) -> None:
        """Migrate, and on a fresh database create the operator tenant and its admin key: the configured
        ``admin_key`` (no file written), else a new one written to the data dir's admin key file."""
        try:
            self.db.migrate()
        except OperationalError as exc:
            where = make_url(self.db.url).render_as_string(hide_password=True)
            reason = str(exc.orig).strip().splitlines()[0]
            raise ConfigurationError(f"cannot use the database {where}: {reason}") from None
        with self.db.write() as session:
            for card in self.portfolio.cards.values():
                audit.record_model(session, card)
        key_path = self.settings.admin_key_path
        given = self.settings.admin_key.get_secret_value() if self.settings.admin_key else None
        if given is not None:
            try:  # a typo is reported at every start, not only on the first
                keystore.parse_token(given)
            except ValueError as exc:
                raise ConfigurationError(f"admin_key: {exc}") from None
        if key_path.exists() and given is None:
            self.sealer.seal_now()
            return
        with self.db.write() as session:
            if self.db.dialect == "postgresql":  # nodes starting together: one bootstraps, the others see its key
                session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": BOOTSTRAP_LOCK})
            tenant = keystore.get_or_create_tenant(session, keystore.OPERATOR_TENANT, is_operator=True)
            has_key = session.scalar(select(ApiKeyRow.id).where(ApiKeyRow.tenant_id == tenant.id).limit(1))
            token = None
            if not has_key and given is not None:  # the operator brought its own key (a Kubernetes Secret)
                try:
                    keystore.import_key(session, tenant, "bootstrap-admin", Role.admin, given)
                except ValueError as exc:
                    raise ConfigurationError(f"admin_key: {exc}") from None
                log.info("the operator's admin key is the configured REELFOUNDRY_ADMIN_KEY")
            elif not has_key:
                token = keystore.create_key(session, tenant, "bootstrap-admin", Role.admin)[1]
        if token is not None:
            write_private(key_path, token + "\n")
            log.info("created admin key in %s", key_path)
        elif given is None:
            # Another node (sharing this database) bootstrapped: its admin key file is the operator's.
            log.info("the operator tenant has keys already; no admin key file in %s", key_path.parent)
        self.sealer.seal_now()

    def _lock_data_dir(self) -> None:
        """Hold an exclusive lock on the data dir for this process's life.

        The node id lives in the data dir and a starting engine re-queues that node's
        running jobs, so two live servers on one data dir would run jobs twice.
        """
        path = self.settings.data_dir / "server.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ConfigurationError(
                f"another reelfoundry server is using {self.settings.data_dir}; give each server its own --data-dir"
            ) from None
        self._lock_fd = fd

    @functools.cached_property
    def rate_limits(self) -> RateLimits:
        """Per-key request counters (this process, or Redis shared by several API processes)."""
        return RateLimits(self.settings)

    @functools.cached_property
    def outbound(self) -> OutboundPolicy:
        """Where the server may send requests for users (public addresses, plus the allowed hosts)."""
        return OutboundPolicy(self.settings.webhook_allowed_hosts)

    @functools.cached_property
    def tracer(self) -> Tracer:
        """Job-stage spans over OTLP when configured; a no-op otherwise."""
        return Tracer(self.settings.otlp_endpoint)

    @functools.cached_property
    def metrics(self) -> Metrics:
        """This server's Prometheus registry (histograms it observes, totals read from the database)."""
        return Metrics(self)

    @functools.cached_property
    def fleet_rates(self) -> dict[str, Rates]:
        """Rates per device class the workers offer, for the router (see ``routing.state.fleet_rates``)."""
        from reelfoundry.routing.state import fleet_rates

        return fleet_rates(self.settings, load_catalog(), self.rates)

    @functools.cached_property
    def rates(self) -> Rates:
        """What this node's worker device costs and where it runs (settings + the price catalog)."""
        return worker_rates(self.settings, load_catalog())

    def egress_meter(self, job_id: str | None) -> Callable[[int], None] | None:
        """A callback that charges bytes served from a job's output to its CostRecord (None for uploads)."""
        if job_id is None:
            return None

        def charge(nbytes: int) -> None:
            try:
                with self.db.write() as session:
                    coststore.add_egress(session, job_id, nbytes)
            except Exception:  # the bytes are sent; a failed charge is logged, never the client's problem
                log.exception("could not charge %d egress bytes to job %s", nbytes, job_id)

        return charge

    def _executor(self) -> Executor:
        """The executor ``settings.executor`` names: worker processes here (local), or tasks on a Ray cluster
        (``ray``: the cluster at RAY_ADDRESS, else the one on this machine; ``ray://host:port``: that one), each
        asking for this node's device class as a custom resource (``device_<class>``: its share of the device) and
        reading inputs from and writing outputs to the object store of ``settings`` (its storage part) themselves."""
        if self.settings.executor == "local":
            return LocalExecutor(
                self.settings.worker_slots,
                self.settings.job_timeout_s,
                self.settings.cancel_grace_s,
                memory_limit_mb=self.settings.worker_memory_limit_mb,
            )
        from reelfoundry.execution.ray_executor import RayExecutor, device_resource
        from reelfoundry.scheduling.live import node_slot_type

        slot = node_slot_type(self.settings, self.rates)
        address = self.settings.executor if self.settings.executor.startswith("ray://") else None
        return RayExecutor(
            self.settings.worker_slots,
            self.settings.job_timeout_s,
            resources={device_resource(slot.device): slot.share},
            address=address or os.environ.get("RAY_ADDRESS", "auto"),
            cancel_grace_s=self.settings.cancel_grace_s,
            memory_limit_mb=self.settings.worker_memory_limit_mb,
            store_settings=self.settings,
            # A GPU class also asks Ray for its share of a GPU (a MIG slice counts as one on its node), or Ray
            # would hide the GPUs from the task.
            num_gpus=0.0 if slot.device == "cpu" else float(slot.share),
        )

    def start(self) -> None:
        """Lock the data dir, bootstrap, start the engine (if this server runs jobs) and the webhook dispatcher."""
        try:
            self.rates  # noqa: B018 - a price the catalog lacks is a start-up error, not a failed job later
        except ReelFoundryError as exc:
            raise ConfigurationError(f"pricing: {exc.detail}") from None
        try:
            self.fleet_rates  # noqa: B018 - likewise a fleet device the catalog cannot price
        except ReelFoundryError as exc:
            raise ConfigurationError(f"pricing: {exc.detail}") from None
        self.tracer  # noqa: B018 - a tracing set-up that cannot work fails the start, not the first job
        self.rate_limits  # noqa: B018 - likewise a rate-limit storage URL whose client is missing
        if self.role != "api":  # API processes (several may share a data dir, --workers N) keep no node state
            self._lock_data_dir()
        self.bootstrap()
        if self.role == "scheduler":
            self.leader = Leadership(self.db, self.node, self.settings.scheduler_lease_s, self._on_leadership)
            self.leader.start()
        if self.runs_jobs:
            executor = self._executor()
            self.engine = Engine(
                self.settings,
                self.db,
                self.portfolio,
                self.storage,
                executor,
                self.node,
                self.credentials,
                self.rates,
                self.metrics,
                self.tracer,
                leader=self.leader,
            )
            self.engine.start()
            if self.db.dialect == "postgresql":  # admissions in other processes wake this engine (NOTIFY)
                self.listener = JobListener(self.db.url, self.engine.wake)
                self.listener.start()
        if self.runs_background:
            self.sealer.start()
            self.lifecycle = LifecycleLoop.start_for(self.settings, self.storage)
            self.webhooks = WebhookDispatcher(self.settings, self.db, webhook_client(self.outbound, self.settings))
            self.webhooks.start()

    def _on_leadership(self, fence: object) -> None:
        """The lease was taken (or lost): a new leader looks at the queue at once."""
        if fence is not None and self.engine is not None:
            self.engine.wake()

    def stop(self) -> None:
        """Stop background work and close connections."""
        if self.listener is not None:
            self.listener.stop()
        if self.engine is not None:
            self.engine.stop()
        if self.leader is not None:
            self.leader.stop()
        if self.webhooks is not None:
            self.webhooks.stop()
        if self.lifecycle is not None:
            self.lifecycle.stop()
        self.sealer.stop()
        if "tracer" in self.__dict__:  # only if it was ever made
            self.tracer.shutdown()
        self.db.dispose()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
