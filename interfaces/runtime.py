"""The composition root: settings -> adapters -> application, and their shutdown."""

from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import Engine

from adapters.fetch.connectivity import GuardedConnectivityChecker
from adapters.metrics import record_job_run
from adapters.postgres.audit_log import PostgresAuditLog
from adapters.postgres.database import DatabaseUrl, make_engine
from adapters.postgres.digest_db import DigestDatabase
from adapters.postgres.embedded import EmbeddedPostgres
from adapters.postgres.embedding_cache import PostgresEmbeddingCaches
from adapters.postgres.idempotency import PostgresIdempotencyStore
from adapters.postgres.idempotency_expiry import idempotency_expiry_job as expiry_job
from adapters.postgres.ingest_host import IngestHost, IngestHostConfig
from adapters.postgres.ingest_queue import PostgresIngestQueue
from adapters.postgres.migrate import assert_migrated
from adapters.postgres.projection_host import ProjectionHost
from adapters.postgres.rag_backfill import use_index_model
from adapters.postgres.read_db import READ_ROLE, ReadDatabase
from adapters.postgres.scheduler_runs import PostgresSchedulerRuns
from adapters.scheduler.blob_sweep_job import blob_sweep_job
from adapters.scheduler.comms_jobs import comms_release_job
from adapters.scheduler.digest_job import digest_job
from adapters.scheduler.integration_jobs import CheckRunLimits, integrations_check_job
from adapters.scheduler.jobs import JobSpec
from adapters.scheduler.rag_jobs import rag_backfill_job, rag_indexes_job
from adapters.scheduler.scheduler import ClusterScheduler, JobFinishedHook
from adapters.scheduler.standard_jobs import housekeeping_job, seal_job, usage_retention_job
from adapters.system import OsSecrets, SystemClock
from application.app import Teaim
from application.config import AppConfig
from application.digests import Digests
from application.ingestion import IngestionPipeline
from application.ingestion_jobs import IngestHandler
from application.integrations import IntegrationChecks
from application.ports import BlobStore, Clock
from interfaces.blob_store import build_blob_store
from interfaces.digests import build_digests
from interfaces.embedding import shared_embedder
from interfaces.extraction import build_extractor
from interfaces.settings import Settings
from interfaces.unsubscribe_key import unsubscribe_key
from interfaces.url_fetch import UrlFetchSetup
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
    """Everything a running service holds; built once per process, closed once.

    Components are registered on one lifecycle as they start and closed in reverse order
    (threads before the pools they use, pools before the database), each close running even
    if an earlier one fails: a pool left open keeps the embedded server from stopping.
    """

    settings: Settings
    database: Database
    app: Teaim
    idempotency: PostgresIdempotencyStore
    idempotency_engine: Engine
    read_db: ReadDatabase
    scheduler_runs: PostgresSchedulerRuns
    jobs: list[JobSpec]
    # Uploaded files' bytes (issue 8): the local directory or S3, from the settings.
    blobs: BlobStore
    lifecycle: ExitStack = field(repr=False)
    url_fetch: UrlFetchSetup = field(default_factory=UrlFetchSetup)
    projections: ProjectionHost | None = None
    audit_log: PostgresAuditLog | None = None
    scheduler: ClusterScheduler | None = None
    # The ingestion queue (enqueues, status) and, when started here, its worker threads.
    ingest_queue: PostgresIngestQueue | None = None
    ingest: IngestHost | None = None
    # The weekly digest service (issue 9): the `comms.digest` job and the digest routes.
    digests: Digests | None = None
    _closed: bool = field(default=False, repr=False)

    def close(self) -> None:
        """Stop what started, newest first, then stop the embedded database if we started it."""
        if self._closed:
            return
        self._closed = True
        self.lifecycle.close()


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
    """Wire adapters into the application; refuse an unmigrated database.

    A failure part-way closes whatever was already opened, in reverse order.
    """
    with ExitStack() as lifecycle:
        db = database or open_database(settings)
        lifecycle.callback(db.close, stop_embedded=settings.stop_embedded_on_exit)
        assert_migrated(db.url.libpq())
        env = db.url.eventsourcing_env(pool_size=settings.db_pool_size)
        env["AGGREGATE_CACHE_MAXSIZE"] = str(settings.aggregate_cache_size)
        # Auditors read the event store itself, which only owner connections may touch.
        audit_log = PostgresAuditLog(
            db.url,
            max_size=settings.audit_reader_pool_size,
            reader_wait_seconds=settings.read_pool_timeout_seconds,
        )
        lifecycle.callback(audit_log.close)
        app = Teaim(
            env,
            clock=clock or SystemClock(),
            secrets=OsSecrets(),
            audit_log=audit_log,
            config=AppConfig(
                signing_link_ttl=timedelta(days=settings.signing_link_ttl_days),
                snapshot_interval=settings.snapshot_interval,
                seal_key=None
                if settings.audit_seal_key is None
                else settings.audit_seal_key.get_secret_value().encode(),
                seal_key_from_position=settings.audit_seal_key_from_position,
                unsubscribe_key=unsubscribe_key(settings),
                mail_domain=settings.message_id_domain,
                public_base_url=settings.public_base_url.rstrip("/"),
                signoff_package_daily_cap=settings.signoff_package_daily_cap,
                signoff_package_org_daily_cap=settings.signoff_package_org_daily_cap,
            ),
        )
        lifecycle.callback(app.close)
        # Counted refusals still held are written before the store closes (domain.denial).
        lifecycle.callback(app.flush_denials)
        engine = make_engine(db.url, pool_pre_ping=True, pool_size=settings.db_pool_size)
        lifecycle.callback(engine.dispose)
        idempotency = PostgresIdempotencyStore(engine)
        lifecycle.callback(idempotency.close)
        read_db = ReadDatabase(
            read_database_url(settings, db.url),
            max_size=settings.db_pool_size,
            require_rls=True,
            statement_timeout_ms=settings.read_statement_timeout_ms,
            pool_timeout=settings.read_pool_timeout_seconds,
        )
        lifecycle.callback(read_db.close)
        scheduler_runs = PostgresSchedulerRuns(db.url)
        lifecycle.callback(scheduler_runs.close)
        blobs = build_blob_store(settings)
        jobs = scheduled_jobs(settings, app, scheduler_runs, db.url)
        jobs.append(
            blob_sweep_job(
                blobs,
                db.url,
                timedelta(hours=1),
                grace=timedelta(minutes=settings.blob_orphan_minutes),
            )
        )
        ingest_queue = PostgresIngestQueue(db.url, max_attempts=settings.ingest_max_attempts)
        lifecycle.callback(ingest_queue.close)
        digest_db = DigestDatabase(db.url)
        lifecycle.callback(digest_db.close)
        digests = build_digests(
            app,
            digest_db,
            read_db,
            app.clock,
            max_projects=settings.digest_max_projects_per_tick,
            max_emails=settings.digest_max_emails_per_tick,
        )
        jobs.append(digest_job(digests, timedelta(seconds=settings.digest_tick_seconds)))
        runtime = Runtime(
            settings=settings,
            database=db,
            app=app,
            idempotency=idempotency,
            idempotency_engine=engine,
            read_db=read_db,
            scheduler_runs=scheduler_runs,
            jobs=jobs,
            audit_log=audit_log,
            blobs=blobs,
            url_fetch=UrlFetchSetup(total_seconds=settings.url_fetch_seconds),
            ingest_queue=ingest_queue,
            digests=digests,
            # Handed over: from here on the runtime's close() runs these steps.
            lifecycle=lifecycle.pop_all(),
        )
        # Built after the runtime: its checks read `runtime.url_fetch` when they run.
        runtime.jobs.append(integrations_job(runtime))
        return runtime


def scheduled_jobs(
    settings: Settings, app: Teaim, runs: PostgresSchedulerRuns, database: DatabaseUrl
) -> list[JobSpec]:
    """Every timed job of the service (the same list in every process, so any may fire it)."""
    jobs = [
        housekeeping_job(
            runs,
            timedelta(seconds=settings.scheduler_housekeeping_seconds),
            keep=timedelta(days=settings.scheduler_retention_days),
        ),
        # Hourly: each run then has at most an hour's rows (per org and route) to delete.
        usage_retention_job(
            database, timedelta(hours=1), keep=timedelta(days=settings.usage_retention_days)
        ),
    ]
    jobs.append(
        expiry_job(
            database, timedelta(hours=1), keep=timedelta(hours=settings.idempotency_ttl_hours)
        )
    )
    if settings.seal_interval_seconds > 0:
        jobs.append(seal_job(app, timedelta(seconds=settings.seal_interval_seconds)))
    jobs.append(
        rag_backfill_job(
            database,
            lambda: shared_embedder(settings),
            timedelta(seconds=settings.rag_backfill_seconds),
            batch=settings.rag_backfill_batch,
        )
    )
    jobs.append(
        rag_indexes_job(
            database,
            timedelta(seconds=settings.rag_index_check_seconds),
            threshold=settings.rag_exact_max_chunks,
        )
    )
    # The outbox's waits (quiet hours, cap, retry backoff) end here (docs/decisions/0026).
    jobs.append(
        comms_release_job(
            database,
            app,
            app.clock,
            timedelta(minutes=1),
            per_org=settings.outbox_release_per_org,
        )
    )
    return jobs


def integration_checks(runtime: Runtime) -> IntegrationChecks:
    """Integration checks under the URL fetcher's SSRF guard (policy, resolver, trust store)."""
    setup = runtime.url_fetch
    checker = GuardedConnectivityChecker(
        policy=setup.policy,
        resolve=setup.resolve,
        tls=setup.tls,
        timeout_seconds=runtime.settings.integrations_check_timeout_seconds,
    )
    return IntegrationChecks(runtime.app, checker)


def integrations_job(runtime: Runtime) -> JobSpec:
    """`integrations.check`: the due integrations of every org, every minute (fair share)."""
    settings = runtime.settings
    return integrations_check_job(
        runtime.database.url,
        lambda: integration_checks(runtime),
        runtime.app.clock.now,
        CheckRunLimits(
            batch=settings.integrations_check_batch,
            per_org=settings.integrations_check_per_org,
            concurrency=settings.integrations_check_concurrency,
            budget_seconds=settings.integrations_check_budget_seconds,
        ),
    )


def start_projections(runtime: Runtime) -> ProjectionHost:
    """Run every projection inside this process (what `teaim serve` does by default)."""
    if runtime.projections is None:
        host = ProjectionHost(all_projections(), runtime.database.url)
        # Registered first: stopping a host that never started is harmless.
        runtime.lifecycle.callback(host.stop)
        runtime.projections = host
        host.start()
    return runtime.projections


def start_scheduler(
    runtime: Runtime,
    *,
    on_job_finished: JobFinishedHook | None = None,
    process: str | None = None,
) -> ClusterScheduler:
    """Fire the timed jobs from this process too (`teaim serve` by default, `scheduler run`).

    `on_job_finished(job_id, outcome, seconds)` is called after each run this process took
    part in; by default it feeds the Prometheus job counters.
    """
    if runtime.scheduler is None:
        scheduler = ClusterScheduler(
            runtime.jobs,
            runtime.scheduler_runs,
            process=process,
            on_job_finished=on_job_finished or record_job_run,
            run_timeout=timedelta(seconds=runtime.settings.scheduler_run_timeout_seconds),
        )
        runtime.lifecycle.callback(scheduler.stop)
        runtime.scheduler = scheduler
        scheduler.start()
    return runtime.scheduler


def ingest_handler(runtime: Runtime) -> IngestHandler | None:
    """The document ingestion the workers run for each job: read the blob, extract (OCR in a
    guarded child process), record the text, embed its chunks through the project's cache,
    record `Indexed` (application/ingestion.py).

    None, with the reason logged, when the embedding model cannot load: the workers then do
    not start and jobs wait on the queue; nothing pretends to ingest them.
    """
    settings = runtime.settings
    try:
        embedder = shared_embedder(settings)
    except Exception:
        log.exception("ingestion workers not started: the embedding model cannot load")
        return None
    use_index_model(runtime.database.url, embedder.model_id)
    extractor = build_extractor(settings)
    runtime.lifecycle.callback(extractor.close)
    # Only the worker threads use it: one connection each at most.
    caches = PostgresEmbeddingCaches(runtime.database.url, max_size=settings.ingest_workers)
    runtime.lifecycle.callback(caches.close)
    work_dir = settings.data_dir / "ingest-tmp"
    work_dir.mkdir(parents=True, exist_ok=True)
    return IngestionPipeline(
        runtime.app,
        runtime.blobs,
        extractor,
        embedder,
        caches.for_project,
        work_dir=work_dir,
    )


def ingest_host_config(settings: Settings, *, workers: int | None = None) -> IngestHostConfig:
    """The worker host's settings (`workers` overrides INGEST_WORKERS: `teaim worker -c N`)."""
    return IngestHostConfig(
        workers=workers or settings.ingest_workers,
        per_org_cap=settings.ingest_per_org_concurrency,
        lease_seconds=settings.ingest_lease_seconds,
        backoff_base_seconds=settings.ingest_backoff_seconds,
        backoff_max_seconds=settings.ingest_backoff_max_seconds,
        poll_seconds=settings.ingest_poll_seconds,
        retention_seconds=settings.ingest_retention_days * 86_400,
    )


def start_ingest(
    runtime: Runtime, *, handler: IngestHandler | None = None, workers: int | None = None
) -> IngestHost | None:
    """Run the ingestion workers in this process (`teaim serve` by default, `teaim worker`).

    None, with a warning, when no handler is wired (see `ingest_handler`).
    """
    if runtime.ingest is None:
        handler = handler or ingest_handler(runtime)
        if handler is None:
            log.warning(
                "ingestion workers not started: no ingest handler is wired"
                " (interfaces.runtime.ingest_handler); queued jobs wait"
            )
            return None
        host = IngestHost(
            handler, runtime.database.url, ingest_host_config(runtime.settings, workers=workers)
        )
        # Registered first: stopping a host that never started is harmless.
        runtime.lifecycle.callback(host.stop)
        runtime.ingest = host
        host.start()
    return runtime.ingest
