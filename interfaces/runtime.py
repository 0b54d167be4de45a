"""The composition root: settings -> adapters -> application, and their shutdown."""

from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import Engine

from adapters.postgres.audit_log import PeriodicSealer, PostgresAuditLog
from adapters.postgres.database import DatabaseUrl, make_engine
from adapters.postgres.embedded import EmbeddedPostgres
from adapters.postgres.idempotency import PostgresIdempotencyStore
from adapters.postgres.migrate import assert_migrated
from adapters.postgres.projection_host import ProjectionHost
from adapters.postgres.read_db import READ_ROLE, ReadDatabase
from adapters.system import OsSecrets, SystemClock
from application.app import Teaim
from application.config import AppConfig
from application.ports import Clock
from interfaces.settings import Settings
from projections.registry import all_projections

log = logging.getLogger("teaim")


@dataclass
class Database:
    """The database the service uses, and whether this process started it."""

    url: DatabaseUrl
    embedded: EmbeddedPostgres | None = None
    started_here: bool = False

    def close(self, *, stop_embedded: bool) -> None:
        """Stop the embedded server if this process started it and is asked to."""
        if self.embedded is not None and self.started_here and stop_embedded:
            self.embedded.stop()


def open_database(settings: Settings) -> Database:
    """Connect to DATABASE_URL, or start (or reuse) the embedded server under data_dir."""
    if settings.database_url:
        return Database(url=DatabaseUrl.parse(settings.database_url))
    embedded = EmbeddedPostgres(settings.embedded_pg_dir)
    was_running = embedded.status().running
    uri = embedded.start()
    return Database(url=DatabaseUrl.parse(uri), embedded=embedded, started_here=not was_running)


@dataclass
class Runtime:
    """Everything a running service holds; built once per process, closed once."""

    settings: Settings
    database: Database
    app: Teaim
    idempotency: PostgresIdempotencyStore
    idempotency_engine: Engine
    read_db: ReadDatabase
    projections: ProjectionHost | None = None
    audit_log: PostgresAuditLog | None = None
    sealer: PeriodicSealer | None = None
    _closed: bool = field(default=False, repr=False)

    def close(self) -> None:
        """Release connections, then stop the embedded database if we started it."""
        if self._closed:
            return
        self._closed = True
        # Each step runs even if an earlier one fails: a pool left open keeps the embedded
        # server from stopping.
        with ExitStack() as steps:
            steps.callback(self.database.close, stop_embedded=self.settings.stop_embedded_on_exit)
            steps.callback(self.idempotency_engine.dispose)
            steps.callback(self.app.close)
            if self.audit_log is not None:
                steps.callback(self.audit_log.close)
            steps.callback(self.read_db.close)
            if self.projections is not None:
                steps.callback(self.projections.stop)
            if self.sealer is not None:
                steps.callback(self.sealer.stop)


def read_database_url(settings: Settings, owner: DatabaseUrl) -> DatabaseUrl:
    """Where queries connect: READ_DATABASE_URL, else the service's database as `teaim_app`."""
    password = settings.read_database_password
    if settings.read_database_url:
        url = DatabaseUrl.parse(settings.read_database_url)
        return url if password is None else url.with_user(url.user, password.get_secret_value())
    return owner.with_user(READ_ROLE, "" if password is None else password.get_secret_value())


def build_runtime(
    settings: Settings, database: Database | None = None, *, clock: Clock | None = None
) -> Runtime:
    """Wire adapters into the application; refuse an unmigrated database."""
    db = database or open_database(settings)
    try:
        assert_migrated(db.url.libpq())
        env = db.url.eventsourcing_env(pool_size=settings.db_pool_size)
        env["AGGREGATE_CACHE_MAXSIZE"] = str(settings.aggregate_cache_size)
        # Auditors read the event store itself, which only owner connections may touch.
        audit_log = PostgresAuditLog(db.url)
    except BaseException:
        db.close(stop_embedded=settings.stop_embedded_on_exit)
        raise
    try:
        app = Teaim(
            env,
            clock=clock or SystemClock(),
            secrets=OsSecrets(),
            audit_log=audit_log,
            config=AppConfig(
                signing_link_ttl=timedelta(days=settings.signing_link_ttl_days),
                snapshot_interval=settings.snapshot_interval,
            ),
        )
        engine = make_engine(db.url, pool_pre_ping=True, pool_size=settings.db_pool_size)
        # A reservation older than this belongs to a request that died without releasing it.
        idempotency = PostgresIdempotencyStore(engine, pending_timeout=timedelta(minutes=5))
    except BaseException:
        audit_log.close()
        db.close(stop_embedded=settings.stop_embedded_on_exit)
        raise
    try:
        read_db = ReadDatabase(
            read_database_url(settings, db.url), max_size=settings.db_pool_size, require_rls=True
        )
    except BaseException:
        app.close()
        engine.dispose()
        audit_log.close()
        db.close(stop_embedded=settings.stop_embedded_on_exit)
        raise
    return Runtime(
        settings=settings,
        database=db,
        app=app,
        idempotency=idempotency,
        idempotency_engine=engine,
        read_db=read_db,
        audit_log=audit_log,
    )


def start_projections(runtime: Runtime) -> ProjectionHost:
    """Run every projection inside this process (what `teaim serve` does by default)."""
    if runtime.projections is None:
        runtime.projections = ProjectionHost(all_projections(), runtime.database.url)
        runtime.projections.start()
    return runtime.projections


def start_sealer(runtime: Runtime) -> PeriodicSealer:
    """Seal every changed project now and then every SEAL_INTERVAL_SECONDS (`teaim serve`)."""
    if runtime.sealer is None:
        runtime.sealer = PeriodicSealer(
            runtime.app, interval_seconds=runtime.settings.seal_interval_seconds
        )
        runtime.sealer.start()
    return runtime.sealer
