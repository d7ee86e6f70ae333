"""Settings: one object, read from ``REELFOUNDRY_*`` environment variables and passed down."""

from __future__ import annotations

import socket
from decimal import Decimal
from pathlib import Path
from typing import Literal

import limits
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything a ReelFoundry process needs to know about where it runs."""

    model_config = SettingsConfigDict(env_prefix="REELFOUNDRY_", extra="ignore")

    environment: Literal["development", "production"] = Field(
        "development", description="production refuses development shortcuts."
    )
    data_dir: Path = Field(Path("./reelfoundry-data"), description="Where the embedded database, media and keys live.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL. Default: SQLite file in the data dir. PostgreSQL: postgresql+psycopg://..."
    )
    storage_url: str | None = Field(
        None, description="Where media goes: file:///path or s3://bucket/prefix. Default: file://<data_dir>/media."
    )
    # S3 storage (storage_url s3://…). Credentials: boto3's chain (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, …).
    s3_endpoint_url: str | None = Field(
        None,
        pattern=r"^https?://[^\s/?#@]+/?$",
        description="S3 endpoint of a compatible server (http://127.0.0.1:8333 for SeaweedFS). Default: AWS's.",
    )
    s3_region: str = Field("us-east-1", pattern=r"^[a-z0-9-]{1,40}$", description="S3 region (signing, new buckets).")
    s3_addressing_style: Literal["path", "virtual", "auto"] = Field(
        "path", description="path (bucket in the path: SeaweedFS, MinIO) or virtual (bucket in the host name)."
    )
    s3_timeout_s: float = Field(
        20.0, gt=0, le=300, description="Connect and read timeout of one S3 request (3 attempts at most)."
    )
    s3_presign_ttl_s: int = Field(
        900, ge=1, le=7 * 86400, description="Longest life of a presigned S3 URL (what a delivery redirects to)."
    )
    s3_create_bucket: bool = Field(
        False, description="Create the bucket at start if it is missing (development). Default: it must exist."
    )
    executor: str = Field(
        "local", description="local (worker processes here), ray (the Ray cluster at RAY_ADDRESS) or ray://host:port."
    )
    host: str = Field("127.0.0.1", description="Address serve binds.")
    port: int = Field(8000, ge=1, le=65535, description="Port serve binds.")
    worker_slots: int = Field(1, ge=0, le=64, description="Jobs run at once by this server; 0 = API only.")
    job_timeout_s: float = Field(
        900.0, gt=0, description="A job attempt running longer than this is killed and failed."
    )
    cancel_grace_s: float = Field(
        10.0, gt=0, description="A cancelled job whose backend reaches no step boundary this long is killed."
    )
    max_attempts: int = Field(3, ge=1, le=20, description="Starts per job before it is failed for good.")
    lease_s: float = Field(60.0, gt=1, description="A running job whose worker is silent this long is re-queued.")
    finetune_evaluate: bool = Field(
        True,
        description="Run the quick NRES suite on each new fine-tuned model against its collection (in the background "
        "on the engine's node); the result is the model's evaluation and quality.",
    )
    finetune_reference_clips: int = Field(
        16, ge=2, le=256, description="Clips of the collection the fine-tune's NRES evaluation compares against."
    )
    storage_retry_limit: int = Field(
        10,
        ge=0,
        le=100,
        description="Attempts per job that failed only because object storage was unavailable and do not count "
        "against max_attempts; each is re-queued after a back-off (storage_retry_base_s, doubling, at most "
        "storage_retry_max_s). Past the limit such failures count like any other.",
    )
    storage_retry_base_s: float = Field(
        2.0, gt=0, le=600, description="The first back-off after a storage outage failed an attempt."
    )
    storage_retry_max_s: float = Field(60.0, gt=0, le=3600, description="The longest such back-off.")
    orphan_grace_s: float | None = Field(
        None,
        gt=0,
        description="How long an object written by an attempt that never recorded it may stay before it is "
        "deleted as an orphan (its process died between the write and the commit); default job_timeout_s + "
        "2 × lease_s, the longest an attempt can still be writing. Objects whose attempt failed to delete them "
        "are retried at once, with back-off.",
    )
    scheduler_lease_s: float = Field(
        10.0,
        gt=0.5,
        le=600,
        description="The elected scheduler's lease (--role scheduler): renewed every third of it; a standby takes "
        "over when it runs out.",
    )
    poll_interval_s: float = Field(0.2, gt=0, le=10, description="How often idle loops look at the database.")
    progress_interval_s: float = Field(
        0.25, ge=0, description="Least time between two stored progress events of a job."
    )
    auth_cache_s: float = Field(
        2.0, ge=0, le=60, description="Seconds a verified key is trusted without a database look-up (0 = never)."
    )
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Largest JSON request body accepted.")
    max_upload_bytes: int = Field(25 * 1_048_576, ge=1024, description="Largest image upload (POST /v1/assets).")
    max_verify_bytes: int = Field(
        256 * 1_048_576, ge=1024, description="Largest file accepted for verification (POST /v1/verify)."
    )
    webhook_timeout_s: float = Field(
        10.0, gt=0, le=120, description="Total time one delivery attempt may take (connect, send, answer)."
    )
    webhook_backoff_base_s: float = Field(1.0, gt=0, description="First retry delay; doubles each attempt.")
    webhook_backoff_max_s: float = Field(300.0, gt=0, description="Longest delay between two attempts.")
    webhook_allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts (names or addresses, JSON list) that webhooks may reach even though they are loopback, "
        "private or link-local, e.g. an internal service or a test receiver on 127.0.0.1. Public hosts need no "
        "entry. Default: none.",
    )
    webhook_max_attempts: int = Field(
        25, ge=1, description="Attempts before a delivery is given up (≈ 2 h at defaults)."
    )
    webhook_max_response_bytes: int = Field(
        65_536, ge=0, le=1_048_576, description="Bytes of a receiver's answer read (then discarded); the rest is cut."
    )
    webhook_concurrency: int = Field(32, ge=1, le=512, description="Deliveries in flight at once, in all.")
    webhook_concurrency_per_receiver: int = Field(
        4, ge=1, le=64, description="Deliveries in flight at once to one receiver (host and port)."
    )
    webhook_concurrency_per_tenant: int = Field(
        8, ge=1, le=256, description="Deliveries in flight at once for one tenant."
    )
    webhook_secret_grace_s: float = Field(
        86400.0,
        ge=0,
        le=30 * 86400,
        description="After a secret rotation, how long the old secret keeps signing beside the new one.",
    )
    rate_limit_submit: str | None = Field(
        "120/minute",
        description="Job submissions per API key (limits syntax: '120/minute', '10 per second'); empty = no limit.",
    )
    rate_limit_read: str | None = Field(
        "3000/minute", description="Every other API request per API key (limits syntax); empty = no limit."
    )
    rate_limit_storage_url: str = Field(
        "memory://",
        description="Where rate-limit counters live: memory:// (this process) or redis://host:port/db (shared by "
        "several API processes).",
    )
    max_concurrent_uploads: int = Field(
        4, ge=1, le=256, description="Uploads (POST /v1/assets, POST /v1/verify) received at once; more get 503."
    )
    max_concurrent_uploads_per_key: int = Field(
        2, ge=1, le=256, description="Of those, how many one API key may have in progress at once."
    )
    upload_timeout_s: float = Field(
        300.0, gt=0, le=3600, description="Time an upload's whole body has to arrive (a trickle is cut off: 408)."
    )
    # Commercial video APIs (cards with hosting {vendor: replicate | fal}). Workers read these from the environment.
    replicate_api_token: SecretStr | None = Field(
        None, description="Replicate API token (sent as Authorization: Bearer) for cards hosted by replicate."
    )
    replicate_base_url: str = Field(
        "https://api.replicate.com", pattern=r"^https?://[^\s/?#]+/?$", description="Replicate's API origin."
    )
    fal_api_key: SecretStr | None = Field(
        None, description="fal.ai API key (sent as Authorization: Key) for cards hosted by fal."
    )
    fal_queue_url: str = Field(
        "https://queue.fal.run", pattern=r"^https?://[^\s/?#]+/?$", description="fal.ai's queue API origin."
    )
    vendor_poll_interval_s: float = Field(
        2.0, gt=0, le=60, description="Time between two status polls of a job at a vendor API."
    )
    vendor_request_timeout_s: float = Field(
        30.0, gt=0, le=300, description="Connect and read timeout of one request to a vendor API."
    )
    vendor_timeout_s: float = Field(
        600.0,
        gt=0,
        description="Most time one vendor job may take, submission to downloaded output (kept under job_timeout_s).",
    )
    vendor_max_output_bytes: int = Field(
        512 * 1_048_576, ge=1024, description="Largest output file fetched from a vendor's output URL."
    )
    worker_memory_limit_mb: int = Field(
        4096,
        ge=0,
        description="Memory each worker process may use (MiB; 0 = no limit). A job over it fails; the server lives on.",
    )
    signing_cert_chain: Path | None = Field(
        None, description="PEM certificate chain (leaf first) that signs C2PA manifests. Default: a development CA."
    )
    signing_key: Path | None = Field(None, description="PEM private key of the signing certificate.")
    signing_trust_anchor: Path | None = Field(None, description="PEM of the CA that verification trusts.")
    admin_key: SecretStr | None = Field(
        None,
        description="The operator's first admin key (rf_<id>_<secret>, e.g. from a Kubernetes Secret; "
        "`reelfoundry keys token` makes one): a database whose operator tenant has no key yet gets this one, and "
        "no admin.key file is written. Ignored once the operator has keys.",
    )
    secret_key: SecretStr | None = Field(
        None,
        description="Key that signs delivery URLs and web UI sessions; API nodes behind one address share it. "
        "Default: <data_dir>/secret.key, made on first use.",
    )
    delivery_url_ttl_s: float = Field(
        3600.0, gt=0, le=7 * 86400, description="How long a delivery URL from POST .../publish works."
    )
    delivery_mode: Literal["api", "presigned"] = Field(
        "api", description="How a delivery URL serves: through the API, or a redirect to the store's presigned URL."
    )
    public_base_url: str | None = Field(
        None,
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        description="Base of the delivery URLs handed out (e.g. https://media.example.com). "
        "Default: http://<host>:<port> of this server (required in production).",
    )
    worker_provider: str = Field(
        "local", description="Who the worker devices are rented from (local, aws, coreweave, lambda): its prices."
    )
    worker_region: str | None = Field(None, description="Provider region (e.g. us-east-1). Default: its first price.")
    worker_pricing_model: str = Field(
        "on-demand", description="on-demand, spot, reserved, capacity-block … as the catalog lists for the device."
    )
    worker_device: str | None = Field(None, description="Device class (cpu, H100, A100-80GB …). Default: detected.")
    worker_device_share: str | None = Field(
        None,
        description="Share of the device each worker slot holds: a fraction (0.5) or a MIG profile (1g.10gb = 1/7). "
        "Default: 1 / worker_slots (slots share one device).",
    )
    worker_partition: str | None = Field(
        None,
        pattern=r"^[1-7]g\.\d+gb$",
        description="MIG profile each worker slot is (e.g. 3g.40gb): the scheduler gives it that many GiB and "
        "k/7 of the device (its price share is worker_device_share; set both). Default: no MIG.",
    )
    worker_device_memory_gib: float | None = Field(
        None,
        gt=0,
        description="Device memory one worker slot offers the scheduler (GiB). Default: the MIG slice's, else the "
        "device's × its share; on a CPU the worker memory limit.",
    )
    batching: bool | None = Field(
        None,
        description="Run compatible queued jobs (same model, size, frames, steps) as one batch on one slot. "
        "Default: on GPU workers, off on a CPU (compute-bound there: a batch gains nothing and delays its jobs).",
    )
    schedule_window: int = Field(
        256, ge=1, le=10_000, description="Queued jobs (by priority, then age) the scheduler considers each turn."
    )
    batch_wait_s: float = Field(
        0.0,
        ge=0,
        le=3600,
        description="How long a partial batch of batch-priority jobs may wait for compatible jobs to fill it, if "
        "its deadline allows (interactive jobs never wait). Default 0: start at once.",
    )
    worker_usd_per_device_hour: Decimal | None = Field(
        None, ge=0, description="Your own price per device-hour (e.g. amortised on-premise), instead of the catalog's."
    )
    worker_tdp_w: float | None = Field(None, gt=0, description="Rated power of the device. Default: the catalog's.")
    worker_pue: float | None = Field(None, ge=1, le=3, description="Facility PUE. Default: the provider's.")
    carbon_region: str | None = Field(
        None, description="Grid region for carbon (world, US, DE, aws:us-east-1 …). Default: from the provider region."
    )
    storage_provider: str | None = Field(None, description="Whose storage prices apply. Default: worker_provider.")
    storage_tier: str | None = Field(None, description="Storage tier name from the catalog. Default: the first.")
    attribute_idle: bool = Field(
        True, description="Charge idle worker-device time to the next job (total = workload + idle)."
    )
    storage_retention_days: float = Field(30.0, ge=0, description="How long outputs are kept, for their storage cost.")
    # Storage tiers: a hot local directory in front of the storage_url store (cold); see assets/tiered.py.
    storage_tiering: bool = Field(False, description="Hot local tier + cold storage_url tier with a lifecycle rule.")
    storage_hot_dir: Path | None = Field(None, description="The hot tier's directory. Default: <data-dir>/hot.")
    storage_write_tier: Literal["hot", "cold"] = Field("hot", description="Where new objects are written.")
    storage_cold_after_days: float = Field(30.0, gt=0, description="Move hot objects unread this long to cold.")
    storage_cold_tier: str = Field(
        "aws/S3 Standard-IA", description="provider/tier (catalog) pricing the cold tier; storage_tier prices hot."
    )
    storage_promote_on_read: bool = Field(False, description="Copy a cold object back to hot when it is read.")
    storage_lifecycle_interval_s: float = Field(3600.0, gt=0, description="How often the lifecycle rule runs.")
    metrics_token: SecretStr | None = Field(
        None,
        description="Bearer token GET /metrics requires (it shows tenant names and spend). Default: open, for a "
        "scraper on a private network; required in production.",
    )
    audit_seal_interval_s: float = Field(
        0.2, gt=0, le=60, description="How often pending audit entries are sealed into the hash chain."
    )
    otlp_endpoint: str | None = Field(
        None,
        description="OTLP/HTTP collector (e.g. http://127.0.0.1:4318) for job-stage traces; also read from "
        "OTEL_EXPORTER_OTLP_ENDPOINT. Default: off (no tracing code loaded).",
    )
    policy_blocked_terms: list[str] = Field(
        default_factory=list, description="Prompts containing any of these (whole words, any case) are refused."
    )
    policy_protected_identities: list[str] = Field(
        default_factory=list, description="Names a prompt may use only with a consent_reference."
    )
    models_file: Path | None = Field(
        None,
        description="YAML file of model cards (`models: [card, ...]`) beside template and builtin. Default: the "
        "shipped portfolio file.",
    )
    fleet_devices: list[str] = Field(
        default_factory=list,
        description="Device classes of workers elsewhere that take this server's jobs (an API-only node's fleet), "
        "for routing. Default: only this node's own device when it runs workers.",
    )
    fleet_slots: int = Field(0, ge=0, description="Worker slots elsewhere serving this queue, for wait estimates.")
    models_root: Path | None = Field(
        None,
        description="The only directory under which a card added over the API (POST /v1/models) may name local "
        "weights (options.path); Hub ids are always allowed. Default: none (local paths only in the models file).",
    )
    routing_min_quality: float = Field(
        0.5,
        ge=0,
        le=1,
        description="The quality score model auto prefers at least, when a request gives no min_quality.",
    )
    routing_cooldown_failures: int = Field(
        3, ge=1, le=100, description="Consecutive backend failures after which the router rests a model."
    )
    routing_cooldown_s: float = Field(
        60.0, gt=0, description="How long a failing model rests before it is tried again."
    )

    # -- NRES evaluation and onboarding --
    nres_fd_scale: float = Field(
        500.0, gt=0, description="Fréchet distance at which NRES fidelity is 1/e (fidelity = exp(-FD / scale))."
    )
    nres_reference_s_per_video_s: float = Field(
        1.0, gt=0, description="NRES t0: seconds per second of video at which time starts to weigh (with c0)."
    )
    nres_reference_usd_per_video_s: Decimal = Field(
        Decimal("0.01"), gt=0, description="NRES c0: dollars per second of video at which cost starts to weigh."
    )
    nres_timeout_s: float = Field(
        1800.0, gt=0, description="Longest an evaluation's generations may run before the run is stopped."
    )
    onboarding_suite: Literal["quick", "standard"] = Field(
        "quick", description="The NRES suite `models onboard` runs for its quality and performance check."
    )
    onboarding_min_fidelity: float = Field(
        0.0, ge=0, le=1, description="Least NRES fidelity a model needs to pass onboarding."
    )
    onboarding_min_nres: float = Field(
        0.0, ge=0, le=1, description="Least NRES score a model needs to pass onboarding."
    )
    onboarding_max_seconds_per_clip: float = Field(
        600.0, gt=0, description="Most warm seconds per suite clip a model may take to pass onboarding."
    )
    onboarding_max_usd_per_clip: Decimal = Field(
        Decimal("1"), ge=0, description="Most dollars per suite clip (at this node's rates) to pass onboarding."
    )

    # -- DAM --
    max_video_upload_bytes: int = Field(
        256 * 1_048_576, ge=1024, description="Largest MP4 upload (POST /v1/assets); images keep max_upload_bytes."
    )
    max_video_upload_duration_s: float = Field(
        600.0, gt=0, le=86400, description="Longest MP4 accepted as an upload, by its header."
    )
    rights_warning_days: float = Field(
        14.0, ge=0, le=3650, description="asset.rights_expiring is sent this many days before an asset's expiry."
    )
    rights_check_interval_s: float = Field(
        300.0, gt=0, le=86400, description="How often the webhook dispatcher looks for rights about to expire."
    )

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.webhook_backoff_max_s < self.webhook_backoff_base_s:
            raise ValueError(
                f"webhook_backoff_max_s ({self.webhook_backoff_max_s}) < webhook_backoff_base_s "
                f"({self.webhook_backoff_base_s})"
            )
        if self.storage_url:
            from reelfoundry.assets.stores import parse_storage_url  # here: settings load before storage code

            parse_storage_url(self.storage_url)  # ValueError saying what is wrong
        signing = (self.signing_cert_chain, self.signing_key, self.signing_trust_anchor)
        if any(p is not None for p in signing) and not all(p is not None for p in signing):
            raise ValueError("signing_cert_chain, signing_key and signing_trust_anchor go together: set all three")
        if self.environment == "production" and self.signing_cert_chain is None:
            raise ValueError(
                "production signs with a real certificate: set signing_cert_chain, signing_key and signing_trust_anchor"
            )
        if self.environment == "production" and self.secret_key is None:
            raise ValueError(
                "production sets secret_key (shared by every API node: it signs delivery URLs and UI sessions)"
            )
        if self.environment == "production" and self.public_base_url is None:
            raise ValueError("production sets public_base_url (the address delivery URLs are handed out under)")
        for name in ("rate_limit_submit", "rate_limit_read"):
            value = getattr(self, name)
            if value:
                try:
                    limits.parse(value)
                except ValueError:
                    raise ValueError(f"{name} {value!r} is not a rate limit such as '120/minute'") from None
        if not self.rate_limit_storage_url.startswith(("memory://", "redis://", "rediss://")):
            raise ValueError(
                f"rate_limit_storage_url {self.rate_limit_storage_url!r}: use memory:// or redis://host:port/db"
            )
        if self.environment == "production" and self.metrics_token is None:
            raise ValueError("production protects /metrics (tenant names and spend): set metrics_token")
        if self.secret_key is not None and len(self.secret_key.get_secret_value()) < 16:
            raise ValueError("secret_key must be at least 16 characters")
        if self.executor not in ("local", "ray") and not self.executor.startswith("ray://"):
            raise ValueError(f"executor {self.executor!r}: use 'local', 'ray' (RAY_ADDRESS) or 'ray://host:port'")
        return self

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to SQLite inside the data dir."""
        return self.database_url or f"sqlite:///{(self.data_dir / 'reelfoundry.db').resolve()}"

    @property
    def delivery_base_url(self) -> str:
        """Where delivery URLs point: public_base_url, else this server's own bind address.

        Never the request's Host header: anyone can send one, and a URL built from it would hand a
        reviewer a link to a host of the sender's choosing.
        """
        if self.public_base_url:
            return self.public_base_url.rstrip("/")
        host = self.host
        if host in ("", "0.0.0.0", "::"):  # every interface: name the machine
            host = socket.gethostname()
        elif ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def media_dir(self) -> Path:
        """Local media root for the default storage."""
        if self.storage_url and self.storage_url.startswith("file://"):
            return Path(self.storage_url.removeprefix("file://"))
        return self.data_dir / "media"

    @property
    def admin_key_path(self) -> Path:
        """Where serve writes the bootstrap admin key."""
        return self.data_dir / "admin.key"
