"""SQLAlchemy tables. Pydantic schemas live in ``reelfoundry.schema``; these are storage only."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ID = String(26)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Fixed(TypeDecorator[Decimal]):
    """An exact Decimal stored as an integer count of ``10**-scale`` units (SQLite has no exact decimals).

    Money is ``Fixed(10)`` (1e-10 dollars), energy and carbon ``Fixed(9)``; sums stay exact on both databases.
    """

    impl = BigInteger
    cache_ok = True

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale
        self._unit = Decimal(1).scaleb(-scale)

    def process_bind_param(self, value: Decimal | int | str | None, dialect: Dialect) -> int | None:
        if value is None:
            return None
        return int(Decimal(value).scaleb(self.scale).to_integral_value(ROUND_HALF_EVEN))

    def process_result_value(self, value: int | None, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return Decimal(int(value)).scaleb(-self.scale).quantize(self._unit)


MONEY = Fixed(10)
QUANTITY = Fixed(9)


def utcnow() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of every table."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime, dict[str, Any]: JSON}


class TenantRow(Base):
    """A customer or team; every other row belongs to one."""

    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    #: The operator tenant (made at bootstrap) may provision keys for other tenants.
    is_operator: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Standard Webhooks signing secret (``whsec_<base64>``).
    webhook_secret: Mapped[str] = mapped_column(String(128))
    #: After a rotation the previous secret signs too, until ``webhook_secret_previous_until``.
    webhook_secret_previous: Mapped[str | None] = mapped_column(String(128))
    webhook_secret_previous_until: Mapped[datetime | None]
    #: Whether the key that submitted a job may approve its asset.
    allow_self_approval: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime]


class ApiKeyRow(Base):
    """An API key; only a hash of its secret is stored."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(64))
    #: The key that created this one (None for keys made at bootstrap).
    created_by: Mapped[str | None] = mapped_column(ID)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class JobRow(Base):
    """A job and its lifecycle; the queue is this table."""

    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key", name="uq_jobs_tenant_idempotency"),
        Index("ix_jobs_claim", "state", "priority", "id"),
        Index("ix_jobs_tenant", "tenant_id", "id"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    state: Mapped[str] = mapped_column(String(16))
    model: Mapped[str] = mapped_column(String(128))
    #: 0 = interactive, 1 = batch: lower runs first.
    priority: Mapped[int] = mapped_column(Integer)
    request: Mapped[dict[str, Any]]
    request_hash: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    project: Mapped[str | None] = mapped_column(String(128))
    campaign: Mapped[str | None] = mapped_column(String(128))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    error_type: Mapped[str | None] = mapped_column(String(255))
    error_detail: Mapped[str | None] = mapped_column(Text)
    asset_id: Mapped[str | None] = mapped_column(ID)
    #: The API key that submitted the job.
    submitted_by: Mapped[str | None] = mapped_column(ID)
    #: Cost reserved against budgets at admission (released when the job ends and its CostRecord is written).
    estimated_usd: Mapped[Decimal | None] = mapped_column(MONEY)
    #: The rates of the node that ran it (finops.meter.Rates as JSON) and what its attempts used.
    meter: Mapped[dict[str, Any] | None]
    device_seconds: Mapped[float] = mapped_column(Float, default=0.0, server_default=text("0"))
    idle_seconds: Mapped[float] = mapped_column(Float, default=0.0, server_default=text("0"))
    energy_j: Mapped[float] = mapped_column(Float, default=0.0, server_default=text("0"))
    energy_method: Mapped[str | None] = mapped_column(String(16))
    #: Node that holds the job while running, and until when its lease lasts.
    worker_node: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    #: The router's RoutePlan (schema.RoutePlan as JSON), made once at admission.
    route: Mapped[dict[str, Any] | None]
    #: The cards of the chosen model and its fallbacks as they were at admission, by id: the engine runs
    #: these, so editing or deleting a card never changes a queued job.
    route_cards: Mapped[dict[str, Any] | None]
    #: generate (a video) or finetune (a LoRA adapter, see FinetuneRow).
    kind: Mapped[str] = mapped_column(String(16), default="generate", server_default=text("'generate'"))
    #: A re-queued job is not claimed before this (a storage outage's back-off); None: at once.
    not_before: Mapped[datetime | None]
    #: Attempts that failed only because the object store was unavailable: they do not count against
    #: ``max_attempts`` (up to ``storage_retry_limit`` of them), so an outage of a few minutes fails no job.
    storage_retries: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))


class AssetRow(Base):
    """A stored media file. At most one per job: the unique job_id makes output exactly-once."""

    __tablename__ = "assets"
    __table_args__ = (
        Index("ix_assets_tenant", "tenant_id", "id"),
        Index("ix_assets_review_queue", "tenant_id", "review_state", "id"),
        Index("ix_assets_tenant_brand", "tenant_id", "brand"),  # the DAM's brand filter
        Index("ix_assets_rights_expiry", "rights_expires_at"),  # the rights-expiring scan
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id"), unique=True)
    media_type: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(512))
    poster_key: Mapped[str | None] = mapped_column(String(512))
    bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    duration_s: Mapped[float | None] = mapped_column(Float)
    fps: Mapped[float | None] = mapped_column(Float)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    num_frames: Mapped[int | None] = mapped_column(Integer)
    codec: Mapped[str | None] = mapped_column(String(32))
    project: Mapped[str | None] = mapped_column(String(128))
    campaign: Mapped[str | None] = mapped_column(String(128))
    #: The API key that submitted the job (or uploaded the file).
    created_by: Mapped[str | None] = mapped_column(ID)
    review_state: Mapped[str] = mapped_column(
        String(16), default="pending_review", server_default=text("'pending_review'")
    )
    #: The review, once decided (the decision follows from review_state).
    reviewer_key_id: Mapped[str | None] = mapped_column(ID)
    reviewer_role: Mapped[str | None] = mapped_column(String(16))
    review_comment: Mapped[str | None] = mapped_column(Text)
    reviewed_at: Mapped[datetime | None]
    #: The published rendition: the file with the review manifest, served by delivery URLs.
    published_key: Mapped[str | None] = mapped_column(String(512))
    published_sha256: Mapped[str | None] = mapped_column(String(64))
    published_bytes: Mapped[int | None] = mapped_column(BigInteger)
    published_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    # -- DAM metadata (editable with PATCH /v1/assets/{id}, audited) --
    #: generated (a job's output) or uploaded (brand material).
    origin: Mapped[str] = mapped_column(String(16), default="generated", server_default=text("'generated'"))
    title: Mapped[str | None] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    #: list[str], lower-case, each ≤ 64 characters.
    tags: Mapped[list[str] | None] = mapped_column(JSON)
    #: Tags the platform suggested (never applied until a person accepts them): list[str].
    suggested_tags: Mapped[list[str] | None] = mapped_column(JSON)
    brand: Mapped[str | None] = mapped_column(String(128))
    licence: Mapped[str | None] = mapped_column(String(128))
    #: Where the consent of the people shown is recorded (a release form's reference).
    consent_ref: Mapped[str | None] = mapped_column(String(255))
    #: After this the asset may not be published or used for training.
    rights_expires_at: Mapped[datetime | None]
    #: e.g. ["no-training"]: list[str].
    usage_restrictions: Mapped[list[str] | None] = mapped_column(JSON)
    #: Perceptual hashes of key frames (hex, comma-separated), for near-duplicate detection.
    phash: Mapped[str | None] = mapped_column(String(256))
    metadata_updated_at: Mapped[datetime | None]
    #: When ``asset.rights_expiring`` was sent for the current expiry (None: not yet).
    rights_notified_at: Mapped[datetime | None]


class CollectionRow(Base):
    """A named set of a tenant's assets (brand material for fine-tuning, a campaign's picks)."""

    __tablename__ = "collections"
    __table_args__ = (UniqueConstraint("tenant_id", "name", name="uq_collections_tenant_name"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(ID)
    created_at: Mapped[datetime]


class CollectionAssetRow(Base):
    """One asset in one collection."""

    __tablename__ = "collection_assets"
    __table_args__ = (Index("ix_collection_assets_asset", "asset_id"),)

    collection_id: Mapped[str] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True)
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True)
    added_by: Mapped[str | None] = mapped_column(ID)
    added_at: Mapped[datetime]


class AssetSearchRow(Base):
    """What search reads of an asset: its text (prompt, title, description, tags, brand) and the embedding of
    that text. Full-text search runs over ``body`` (SQLite: the FTS5 table ``asset_search_fts``; PostgreSQL: a GIN
    index on its tsvector, both made by migration 0011)."""

    __tablename__ = "asset_search"
    __table_args__ = (Index("ix_asset_search_tenant", "tenant_id"),)

    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ID)
    body: Mapped[str] = mapped_column(Text)
    embedding_model: Mapped[str | None] = mapped_column(String(64))
    #: float32 little-endian, unit length.
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime]


class FinetuneRow(Base):
    """A LoRA fine-tune of a base model on a collection: its job, the adapter it made and the assets it read."""

    __tablename__ = "finetunes"
    __table_args__ = (Index("ix_finetunes_tenant", "tenant_id", "id"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id"))
    #: The model it registers.
    name: Mapped[str] = mapped_column(String(128))
    base: Mapped[str] = mapped_column(String(128))
    collection_id: Mapped[str | None] = mapped_column(ID)
    #: rank, steps, learning rate…
    params: Mapped[dict[str, Any]]
    #: queued, running, succeeded, failed, cancelled.
    state: Mapped[str] = mapped_column(String(16))
    adapter_key: Mapped[str | None] = mapped_column(String(512))
    adapter_sha256: Mapped[str | None] = mapped_column(String(64))
    #: The asset ids it trained on: list[str].
    assets_used: Mapped[list[str] | None] = mapped_column(JSON)
    #: The NRES result against the collection.
    evaluation: Mapped[dict[str, Any] | None]
    created_by: Mapped[str | None] = mapped_column(ID)
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class ModelEvaluationRow(Base):
    """One run of the NRES suite on a model (``reelfoundry eval model``); the newest feeds the router's quality."""

    __tablename__ = "model_evaluations"
    __table_args__ = (Index("ix_model_evaluations_model", "model", "created_at"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    model: Mapped[str] = mapped_column(String(128))
    suite: Mapped[str] = mapped_column(String(32))
    suite_version: Mapped[str] = mapped_column(String(32))
    result: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class EventRow(Base):
    """A job event. Written in the transaction that changes the job, after the job row is locked."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_job", "job_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"))
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    type: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class WebhookDeliveryRow(Base):
    """The webhook outbox and delivery log: one row per event of a job with a webhook_url.

    The URL itself is stored once, in the job's request; ``receiver`` (its host:port) is what the
    dispatcher's fair-share limits count against.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_due", "state", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"))
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"))
    receiver: Mapped[str] = mapped_column(String(300))
    #: pending → delivered | failed
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]


class _AuditEntry:
    """What an audit entry says: when, in which tenant, who did what to what, and the facts."""

    at: Mapped[datetime]
    tenant_id: Mapped[str | None] = mapped_column(String(26))
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str | None] = mapped_column(String(128))
    data: Mapped[dict[str, Any]]


class AuditPendingRow(_AuditEntry, Base):
    """An audit entry written with the change it records, waiting to be sealed into the chain.

    Appending here takes no lock, so concurrent submissions do not queue on the chain; one sealer at a time
    moves pending entries, in id order, into ``audit_log`` (see ``store.audit.seal``).
    """

    __tablename__ = "audit_pending"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)


class AuditRow(_AuditEntry, Base):
    """One audit-log entry. Append-only; each entry's hash covers the previous entry's hash."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class CostRecordRow(Base):
    """The price of one finished job (exactly one per job: the unique job_id), in money, energy and carbon."""

    __tablename__ = "cost_records"
    __table_args__ = (Index("ix_cost_records_tenant_time", "tenant_id", "created_at"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), unique=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    project: Mapped[str | None] = mapped_column(String(128))
    campaign: Mapped[str | None] = mapped_column(String(128))
    model: Mapped[str] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16))
    node: Mapped[str | None] = mapped_column(String(64))
    catalog_version: Mapped[str | None] = mapped_column(String(32))
    provider: Mapped[str | None] = mapped_column(String(32))
    region: Mapped[str | None] = mapped_column(String(64))
    pricing_model: Mapped[str | None] = mapped_column(String(32))
    device: Mapped[str | None] = mapped_column(String(32))
    device_share: Mapped[Decimal | None] = mapped_column(QUANTITY)
    usd_per_device_hour: Mapped[Decimal | None] = mapped_column(MONEY)
    device_seconds: Mapped[float] = mapped_column(Float)
    idle_seconds: Mapped[float] = mapped_column(Float)
    energy_method: Mapped[str | None] = mapped_column(String(16))
    pue: Mapped[Decimal | None] = mapped_column(QUANTITY)
    carbon_region: Mapped[str | None] = mapped_column(String(32))
    g_co2e_per_kwh: Mapped[Decimal | None] = mapped_column(QUANTITY)
    energy_kwh: Mapped[Decimal] = mapped_column(QUANTITY)
    co2e_kg: Mapped[Decimal] = mapped_column(QUANTITY)
    stored_bytes: Mapped[int] = mapped_column(BigInteger)
    video_seconds: Mapped[float] = mapped_column(Float)
    egress_bytes: Mapped[int] = mapped_column(BigInteger)
    egress_usd_per_gb: Mapped[Decimal | None] = mapped_column(MONEY)
    compute_usd: Mapped[Decimal] = mapped_column(MONEY)
    idle_usd: Mapped[Decimal] = mapped_column(MONEY)
    storage_usd: Mapped[Decimal] = mapped_column(MONEY)
    egress_usd: Mapped[Decimal] = mapped_column(MONEY)
    total_usd: Mapped[Decimal] = mapped_column(MONEY)
    created_at: Mapped[datetime]


class BudgetRow(Base):
    """A spending limit for a tenant, or one project or campaign of it, per period."""

    __tablename__ = "budgets"
    __table_args__ = (Index("ix_budgets_tenant", "tenant_id", "id"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    name: Mapped[str] = mapped_column(String(128))
    #: tenant | project | campaign, and for the latter two which one.
    scope: Mapped[str] = mapped_column(String(16))
    scope_value: Mapped[str | None] = mapped_column(String(128))
    #: day | week | month | total
    period: Mapped[str] = mapped_column(String(8))
    limit_usd: Mapped[Decimal] = mapped_column(MONEY)
    #: hard: admission refuses (402); soft: an event and a webhook when crossed.
    enforcement: Mapped[str] = mapped_column(String(8))
    #: Start of the period a soft budget last warned about (one warning per period).
    warned_period: Mapped[datetime | None]
    created_by: Mapped[str | None] = mapped_column(ID)
    created_at: Mapped[datetime]


class ModelCardRow(Base):
    """A model card added over the API (cards of the models file and the built-in ones are not stored)."""

    __tablename__ = "model_cards"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    card: Mapped[dict[str, Any]]
    created_by: Mapped[str | None] = mapped_column(ID)
    created_at: Mapped[datetime]
    #: candidate (registered, not yet through onboarding: not routable) or approved.
    status: Mapped[str] = mapped_column(String(16), default="approved", server_default=text("'approved'"))
    approved_at: Mapped[datetime | None]
    #: Its first production job (model agility: registered → approved → first job).
    first_job_at: Mapped[datetime | None]


class ModelHealthRow(Base):
    """Consecutive backend failures of a model, and until when the router keeps it cooling down."""

    __tablename__ = "model_health"

    model: Mapped[str] = mapped_column(String(128), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    cooldown_until: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class SchedulerLeaseRow(Base):
    """Who holds a singleton role (the scheduler) until when; ``epoch`` is the fencing token, one more on every
    takeover, so a deposed holder's writes (which name the epoch they were made under) are refused."""

    __tablename__ = "scheduler_lease"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128), default="")
    epoch: Mapped[int] = mapped_column(BigInteger, default=0)
    expires_at: Mapped[datetime]


class PendingObjectRow(Base):
    """An object an attempt may write before the row that names it exists (its output video and poster): recorded
    in the claim's transaction, removed in the one that records the asset. A row that outlives its attempt names
    an orphan, which ``store.pending.sweep`` deletes from the store — whether the attempt failed while the store
    was down (its own clean-up failed) or its process died between the write and the commit."""

    __tablename__ = "pending_objects"
    __table_args__ = (
        Index("ix_pending_objects_job", "job_id", "attempt"),
        Index("ix_pending_objects_created", "created_at"),
    )

    key: Mapped[str] = mapped_column(String(512), primary_key=True)
    job_id: Mapped[str | None] = mapped_column(ID)
    attempt: Mapped[int] = mapped_column(Integer)
    #: The node whose attempt writes it.
    node: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    #: When its attempt gave it up (the delete failed): it may be swept at once, not only after the grace.
    abandoned_at: Mapped[datetime | None]
    #: Not swept again before this (a failed delete backs off).
    next_try_at: Mapped[datetime | None]
    tries: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))


class StoredObjectRow(Base):
    """Where one media object lives when storage is tiered (hot: local disk; cold: the object store), and when it
    was last read: the lifecycle rule reads this table, never a listing of the stores."""

    __tablename__ = "stored_objects"
    __table_args__ = (Index("ix_stored_objects_tier_access", "tier", "last_access_at"),)

    key: Mapped[str] = mapped_column(String(512), primary_key=True)
    #: hot | cold
    tier: Mapped[str] = mapped_column(String(8))
    bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    #: Last read, recorded at most once an hour (see ``store.objects.ACCESS_RESOLUTION``).
    last_access_at: Mapped[datetime]
    #: When it last changed tier (None: never moved).
    moved_at: Mapped[datetime | None]
    #: Days it spent in the cold tier before its last move back to hot (its storage is priced from this).
    cold_days: Mapped[float] = mapped_column(Float, default=0.0, server_default=text("0"))


class WebhookEndpointRow(Base):
    """A tenant's endpoint for asset events (``PUT /v1/webhooks/endpoint``): asset events concern no job, so
    they cannot go to a job's ``webhook_url``."""

    __tablename__ = "webhook_endpoints"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[str | None] = mapped_column(ID)
    updated_at: Mapped[datetime]


class AssetWebhookRow(Base):
    """One asset event for one tenant's endpoint: the outbox row the dispatcher sends, like
    ``webhook_deliveries`` for job events, with its body and URL fixed when the event happened."""

    __tablename__ = "asset_webhook_deliveries"
    __table_args__ = (
        Index("ix_asset_webhook_due", "state", "next_attempt_at"),
        Index("ix_asset_webhook_tenant", "tenant_id", "id"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    asset_id: Mapped[str] = mapped_column(ID)
    #: asset.created | asset.metadata_updated | asset.rights_expiring
    type: Mapped[str] = mapped_column(String(48))
    url: Mapped[str] = mapped_column(Text)
    #: ``host:port`` of the URL: what the fair shares count.
    receiver: Mapped[str] = mapped_column(String(300))
    #: The event as sent (JSON text, so every retry signs the same bytes).
    body: Mapped[str] = mapped_column(Text)
    #: pending | delivered | failed
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]


#: Outcome money in 1e-4 dollars: a tenant's sums stay inside a 64-bit integer (SQLite's sum() refuses to
#: overflow) up to $922 trillion, where MONEY's 1e-10 would stop at $922 million.
OUTCOME_MONEY = Fixed(4)


class OutcomeRow(Base):
    """What an asset or a campaign achieved in a period (``POST /v1/outcomes``): the ROI model's measured side."""

    __tablename__ = "outcomes"
    __table_args__ = (
        Index("ix_outcomes_tenant", "tenant_id", "id"),
        Index("ix_outcomes_tenant_campaign_at", "tenant_id", "campaign", "at"),
        Index("ix_outcomes_tenant_at", "tenant_id", "at"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    asset_id: Mapped[str | None] = mapped_column(ID)
    campaign: Mapped[str | None] = mapped_column(String(128))
    channel: Mapped[str | None] = mapped_column(String(64))
    views: Mapped[int] = mapped_column(BigInteger)
    clicks: Mapped[int] = mapped_column(BigInteger)
    conversions: Mapped[int] = mapped_column(BigInteger)
    revenue_usd: Mapped[Decimal] = mapped_column(OUTCOME_MONEY)
    spend_usd: Mapped[Decimal] = mapped_column(OUTCOME_MONEY)
    period_start: Mapped[datetime | None]
    period_end: Mapped[datetime | None]
    #: When it counts in a window: period_end, or created_at when no period was given.
    at: Mapped[datetime]
    note: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(ID)
    created_at: Mapped[datetime]
