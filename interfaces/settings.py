"""Service settings, read from environment variables (and an optional .env file)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapters.postgres.usage import USAGE_WINDOW_DAYS


class Settings(BaseSettings):
    """Everything the composition root needs; nothing else reads the environment."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

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
    jwt_secret: SecretStr | None = Field(default=None, description="HS256 secret for bearers.")
    jwt_audience: str | None = None
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
    scheduler_retention_days: float = Field(
        default=30.0, gt=0, description="How long the scheduler's run log keeps finished runs."
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

    @property
    def embedded_pg_dir(self) -> Path:
        """The embedded cluster's data directory."""
        return self.data_dir / "pg"
