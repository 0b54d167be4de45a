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
from interfaces.cli_projections import projections_group
from interfaces.cli_scheduler import scheduler_group
from interfaces.http.auth import SERVICE_USER
from interfaces.http.routes.auditors import replay_lines, verify_out
from interfaces.logs import configure_from_settings
from interfaces.runtime import (
    Runtime,
    build_runtime,
    open_database,
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


@main.group()
def audit() -> None:
    """Auditors: replay a project's raw history, verify its hash chain, seal it."""


_PROJECT = click.option(
    "--project", "project_id", type=click.UUID, required=True, help="The project's id."
)
_ORG = click.option(
    "--org",
    "org_id",
    type=click.UUID,
    default=None,
    help="The project's org (checked when given, else read from the project's events).",
)


def _audit_runtime() -> Runtime:
    try:
        return build_runtime(Settings())
    except UnmigratedDatabaseError as error:
        raise click.ClickException(str(error)) from None


def _org_of(runtime: Runtime, project_id: UUID, org_id: UUID | None) -> UUID:
    found = runtime.app.project_org(project_id)
    if found is None or (org_id is not None and org_id != found):
        raise click.ClickException(f"project {project_id} not found")
    return found


def _service_ctx(org_id: UUID) -> CommandContext:
    return CommandContext(
        principal=Principal(
            user_id=SERVICE_USER, org_id=org_id, org_role=Role.OWNER, is_service=True
        ),
        correlation_id=f"cli-{uuid.uuid4()}",
    )


@audit.command("replay")
@_PROJECT
@_ORG
def audit_replay(project_id: UUID, org_id: UUID | None) -> None:
    """Write the project's raw event history to stdout as NDJSON, in log order."""
    runtime = _audit_runtime()
    try:
        org = _org_of(runtime, project_id, org_id)
        out = sys.stdout.buffer
        history = runtime.app.project_history(org_id=org, project_id=project_id)
        count = 0
        for count, line in enumerate(replay_lines(history), start=1):
            out.write(line)
            if count % 10_000 == 0:
                click.echo(f"replayed {count} events", err=True)
        out.flush()
        click.echo(f"replayed {count} events", err=True)
    finally:
        runtime.close()


@audit.command("verify")
@_PROJECT
@_ORG
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def audit_verify(project_id: UUID, org_id: UUID | None, as_json: bool) -> None:
    """Check the project's hash chain and seals; exit 0 when intact, 1 at the first break."""
    runtime = _audit_runtime()
    try:
        org = _org_of(runtime, project_id, org_id)
        report = runtime.app.verify_project(
            org_id=org,
            project_id=project_id,
            progress=lambda n: click.echo(f"verified {n} events", err=True),
            progress_every=10_000,
        )
    finally:
        runtime.close()
    if as_json:
        click.echo(verify_out(report).model_dump_json())
    elif report.broken is None:
        click.echo(
            f"intact: {report.events} events, {report.aggregates} aggregates,"
            f" {report.seals} seals, through position {report.last_position}"
        )
    else:
        broken = report.broken
        where = "missing" if broken.position is None else f"position {broken.position}"
        click.echo(
            f"BROKEN ({broken.kind.value}) at {where}: aggregate {broken.aggregate_id}"
            f" version {broken.version}: {broken.detail}"
        )
    sys.exit(0 if report.intact else 1)


@audit.command("seal")
@click.option("--project", "project_id", type=click.UUID, default=None, help="Only this one.")
def audit_seal(project_id: UUID | None) -> None:
    """Seal the heads of every chain of one project, or of every project with new events."""
    runtime = _audit_runtime()
    try:
        if project_id is not None:
            ctx = _service_ctx(_org_of(runtime, project_id, None))
            try:
                result = runtime.app.seal_project(ctx=ctx, project_id=project_id)
            except DomainError as error:
                raise click.ClickException(error.message) from None
            if result.position:
                click.echo(f"sealed {project_id} at position {result.position}")
            else:
                click.echo(f"{project_id}: already sealed, nothing new")
            return
        run = runtime.app.seal_all_projects(correlation_id=f"cli-{uuid.uuid4()}")
        click.echo(
            f"sealed {len(run.sealed)}, unchanged {len(run.unchanged)},"
            f" failed {len(run.failed)} (through position {run.through_position})"
        )
        if run.failed:
            sys.exit(1)
    finally:
        runtime.close()
