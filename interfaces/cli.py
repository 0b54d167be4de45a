"""The `teaim` command line: serve, migrate, the embedded database, and org administration."""

from __future__ import annotations

import logging
import sys
import uuid
from uuid import UUID

import click
from pydantic import ValidationError

from adapters.postgres.embedded import EmbeddedPostgres, EmbeddedPostgresError
from adapters.postgres.migrate import UnmigratedDatabaseError, current_revision, upgrade
from adapters.postgres.read_db import ReadRoleError
from application.context import CommandContext, Principal
from domain.errors import DomainError
from domain.roles import Role
from interfaces.cli_artifacts import artifacts_group
from interfaces.cli_audit import audit_group
from interfaces.cli_projections import projections_group
from interfaces.cli_scheduler import scheduler_group
from interfaces.cli_setup import setup_command
from interfaces.cli_worker import worker_command
from interfaces.http.auth import SERVICE_USER
from interfaces.logs import configure_from_settings
from interfaces.reactors import start_reactors
from interfaces.runtime import (
    build_runtime,
    open_database,
    start_ingest,
    start_projections,
    start_scheduler,
)
from interfaces.serve_guard import UnsafeBindError, check_dev_auth_bind
from interfaces.serve_workers import serve_workers
from interfaces.settings import Settings


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log at INFO level.")
def main(verbose: bool) -> None:
    """TEAIM: event-sourced backend for client projects run through signed-off stages."""
    # Commands other than serve log warnings only, unless asked; serve uses LOG_LEVEL. Like
    # logging.basicConfig, this leaves a host that set logging up already (a test) alone.
    if not logging.getLogger().handlers:
        configure_from_settings(_settings(), level="INFO" if verbose else "WARNING")


def _settings() -> Settings:
    """The settings from the environment; invalid ones (a short JWT_SECRET...) stop the command."""
    try:
        return Settings()
    except ValidationError as error:
        # Field and reason only: the rejected input may be a secret.
        reasons = "; ".join(
            f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}"
            for e in error.errors(include_input=False, include_url=False)
        )
        raise click.ClickException(f"invalid settings: {reasons}") from None


@main.command()
@click.option("--host", default=None, help="Interface to bind (default from HOST, 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (default from PORT, 8000).")
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="API processes; above 1, this process runs the background work and supervises them.",
)
@click.option(
    "--allow-dev-auth-remote",
    is_flag=True,
    help="Serve with DEV_AUTH on a non-loopback address (anyone reaching it can be anyone).",
)
def serve(host: str | None, port: int | None, workers: int, allow_dev_auth_remote: bool) -> None:
    """Run the HTTP API (starting the embedded database when DATABASE_URL is unset)."""
    import uvicorn

    from interfaces.http.app import create_app

    settings = _settings()
    try:
        check_dev_auth_bind(settings, host or settings.host, allow_remote=allow_dev_auth_remote)
    except UnsafeBindError as error:
        raise click.ClickException(str(error)) from None
    configure_from_settings(settings)
    try:
        runtime = build_runtime(settings)
    except (UnmigratedDatabaseError, ReadRoleError, EmbeddedPostgresError) as error:
        raise click.ClickException(str(error)) from None
    try:
        if settings.run_projections:
            start_projections(runtime)
        if settings.run_scheduler:
            start_scheduler(runtime)
        if settings.run_ingest:
            start_ingest(runtime)
        if settings.run_projections and runtime.ingest_queue is not None:
            # The ingestion reactor turns uploads into queued jobs (one leader across
            # processes: an advisory lock elects it, so `teaim worker` may run it too).
            start_reactors(runtime, runtime.ingest_queue)
    except BaseException:
        runtime.close()  # stops whatever did start, newest first
        raise
    if workers > 1:
        serve_workers(
            runtime, workers=workers, host=host or settings.host, port=port or settings.port
        )
        return
    app = create_app(runtime=runtime, own_runtime=True)
    uvicorn.run(
        app,
        host=host or settings.host,
        port=port or settings.port,
        log_level=settings.log_level.lower(),
        # Our handler (interfaces.logs) formats and scrubs uvicorn's lines too; the request
        # middleware's line replaces uvicorn's access log, which would print query strings.
        log_config=None,
        access_log=False,
        # Open notification streams would otherwise hold shutdown until clients leave.
        timeout_graceful_shutdown=5,
    )


@main.command()
def migrate() -> None:
    """Apply every pending migration (the embedded database is started if needed)."""
    settings = Settings()
    database = open_database(settings)
    try:
        url = database.url.libpq()
        before = current_revision(url)
        upgrade(url)
        after = current_revision(url)
        click.echo(f"database {database.url.redacted()}: {before or 'empty'} -> {after}")
    finally:
        database.close(stop_embedded=settings.stop_embedded_on_exit)


@main.group()
def db() -> None:
    """The embedded PostgreSQL (data under DATA_DIR/pg)."""


def _embedded(settings: Settings) -> EmbeddedPostgres:
    if settings.database_url:
        raise click.ClickException("DATABASE_URL is set: the embedded database is not in use")
    return EmbeddedPostgres(settings.embedded_pg_dir)


@db.command("start")
def db_start() -> None:
    """Start the embedded database and leave it running."""
    try:
        uri = _embedded(Settings()).start()
    except EmbeddedPostgresError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"running: {uri}")


@db.command("stop")
def db_stop() -> None:
    """Stop the embedded database."""
    embedded = _embedded(Settings())
    embedded.stop()
    click.echo("stopped")


@db.command("status")
def db_status() -> None:
    """Say whether the embedded database runs, and where."""
    status = _embedded(Settings()).status()
    if status.running:
        click.echo(f"running (pid {status.pid}) data={status.data_dir} uri={status.uri}")
    else:
        click.echo(f"stopped data={status.data_dir}")
        sys.exit(3)


@main.group()
def orgs() -> None:
    """Tenants."""


@orgs.command("create")
@click.argument("name")
@click.option("--id", "org_id", type=click.UUID, default=None, help="Use this org id.")
def orgs_create(name: str, org_id: UUID | None) -> None:
    """Register an org and print its id."""
    settings = Settings()
    try:
        runtime = build_runtime(settings)
    except UnmigratedDatabaseError as error:
        raise click.ClickException(str(error)) from None
    try:
        ctx = CommandContext(
            principal=Principal(
                user_id=SERVICE_USER,
                org_id=org_id or uuid.uuid4(),
                org_role=Role.OWNER,
                is_service=True,
            ),
            correlation_id=f"cli-{uuid.uuid4()}",
        )
        try:
            result = runtime.app.create_org(ctx=ctx, name=name)
        except DomainError as error:
            raise click.ClickException(error.message) from None
        click.echo(str(result.id))
    finally:
        runtime.close()


main.add_command(projections_group)
main.add_command(scheduler_group)
main.add_command(audit_group)
main.add_command(worker_command)
main.add_command(setup_command)
main.add_command(artifacts_group)
