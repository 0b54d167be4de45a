"""`teaim projections`: run, inspect, rebuild and resume the read models."""

from __future__ import annotations

import signal
import threading
from types import FrameType
from uuid import UUID

import click
import psycopg

from adapters.postgres.migrate import UnmigratedDatabaseError, assert_migrated
from adapters.postgres.projection_host import ProjectionHost
from adapters.postgres.projection_rebuild import rebuild
from adapters.postgres.projection_runner import resume, statuses
from interfaces.runtime import Database, open_database
from interfaces.settings import Settings
from projections.base import Projection
from projections.registry import all_projections


def _database() -> tuple[Settings, Database]:
    settings = Settings()
    database = open_database(settings)
    try:
        assert_migrated(database.url.libpq())
    except UnmigratedDatabaseError as error:
        database.close(stop_embedded=settings.stop_embedded_on_exit)
        raise click.ClickException(str(error)) from None
    return settings, database


def _named(name: str) -> Projection:
    for projection in all_projections():
        if projection.name == name:
            return projection
    names = ", ".join(p.name for p in all_projections())
    raise click.BadParameter(f"unknown projection {name!r} (known: {names})")


@click.group("projections")
def projections_group() -> None:
    """Read models built from the event log."""


@projections_group.command("run")
def run() -> None:
    """Run every projection in this process until interrupted (scale-out worker)."""
    settings, database = _database()
    host = ProjectionHost(all_projections(), database.url)
    done = threading.Event()

    def _shutdown(signum: int, _frame: FrameType | None) -> None:
        click.echo(f"signal {signum}: stopping after the current batches", err=True)
        done.set()

    signal.signal(signal.SIGTERM, _shutdown)
    signal.signal(signal.SIGINT, _shutdown)
    host.start()
    click.echo(f"running {len(host.runners)} projections; Ctrl-C to stop", err=True)
    try:
        done.wait()
    finally:
        host.stop()
        database.close(stop_embedded=settings.stop_embedded_on_exit)


@projections_group.command("status")
def status() -> None:
    """Position, lag (events and seconds) and state of every projection, and halted orgs."""
    settings, database = _database()
    try:
        with psycopg.connect(database.url.libpq()) as conn:
            rows = statuses(conn, [p.name for p in all_projections()])
    finally:
        database.close(stop_embedded=settings.stop_embedded_on_exit)
    click.echo(f"{'projection':<16} {'position':>10} {'head':>10} {'lag':>8} {'lag s':>8}  status")
    for row in rows:
        line = (
            f"{row.name:<16} {row.position:>10} {row.head:>10} {row.lag_events:>8} "
            f"{row.lag_seconds:>8.1f}  {row.status}"
        )
        if row.error:
            line += f" at {row.failed_position}: {row.error}"
        click.echo(line)
        for halt in row.halts:
            waiting = " (resume requested)" if halt.resume_requested else ""
            click.echo(
                f"  halted org {halt.org_id} from position {halt.position}{waiting}:"
                f" event {halt.failed_position} {halt.event}: {halt.error}"
            )


@projections_group.command("rebuild")
@click.argument("name")
def rebuild_command(name: str) -> None:
    """Rebuild NAME from position zero into fresh tables, swapped in when caught up."""
    projection = _named(name)
    settings, database = _database()
    try:
        with psycopg.connect(database.url.libpq()) as conn:
            head = statuses(conn, [projection.name])[0].head
        with click.progressbar(length=head, label=f"rebuilding {name}", file=None) as bar:
            position = rebuild(projection, database.url, progress=bar.update)
    finally:
        database.close(stop_embedded=settings.stop_embedded_on_exit)
    click.echo(f"{name} rebuilt and swapped in at position {position}")


@projections_group.command("resume")
@click.argument("name")
@click.option("--org", "org", type=click.UUID, default=None, help="Only this org's halt.")
def resume_command(name: str, org: UUID | None) -> None:
    """Re-apply NAME's held events of halted orgs (after fixing the cause).

    The running projection applies them, in order and exactly once, then follows the log
    again for that org; if the event fails again, the org stays halted with the new error.
    """
    _named(name)
    settings, database = _database()
    try:
        with psycopg.connect(database.url.libpq()) as conn:
            resumed = resume(conn, name, org)
    finally:
        database.close(stop_embedded=settings.stop_embedded_on_exit)
    scope = f"{name} for org {org}" if org else name
    click.echo(f"{scope}: resume requested" if resumed else f"{scope} was not halted")
