"""`teaim scheduler`: run the timed jobs in this process, and show where each job stands."""

from __future__ import annotations

import signal
import threading
from datetime import UTC, datetime
from types import FrameType

import click

from adapters.postgres.migrate import UnmigratedDatabaseError
from adapters.scheduler.status import RunRecord, job_statuses
from interfaces.runtime import Runtime, build_runtime, start_scheduler
from interfaces.settings import Settings


def _runtime() -> Runtime:
    try:
        return build_runtime(Settings())
    except UnmigratedDatabaseError as error:
        raise click.ClickException(str(error)) from None


@click.group("scheduler")
def scheduler_group() -> None:
    """Timed jobs (sealing, housekeeping); each scheduled run fires once across processes."""


@scheduler_group.command("run")
def run() -> None:
    """Run only the scheduler in this process until interrupted (scale-out worker)."""
    runtime = _runtime()
    done = threading.Event()

    def _shutdown(signum: int, _frame: FrameType | None) -> None:
        click.echo(f"signal {signum}: stopping after the runs in progress", err=True)
        done.set()

    signal.signal(signal.SIGTERM, _shutdown)
    signal.signal(signal.SIGINT, _shutdown)
    try:
        scheduler = start_scheduler(runtime)
        click.echo(
            f"scheduler {scheduler.process} running {len(scheduler.jobs)} jobs; Ctrl-C to stop",
            err=True,
        )
        done.wait()
    finally:
        runtime.close()


def _when(record: RunRecord | None) -> str:
    if record is None:
        return "never"
    return f"{record.scheduled_at.isoformat(timespec='seconds')} {record.outcome}"


@scheduler_group.command("status")
def status() -> None:
    """Every job: its period, last run, next run and last error."""
    runtime = _runtime()
    try:
        rows = job_statuses(runtime.jobs, runtime.scheduler_runs, datetime.now(UTC))
    finally:
        runtime.close()
    click.echo(f"{'job':<24} {'every s':>9}  {'last run':<36} {'next run':<25}  last error")
    for row in rows:
        error = row.last_error
        last_error = "-" if error is None else f"{_when(error)}: {error.error}"
        by = "" if row.last_run is None else f" ({row.last_run.process})"
        click.echo(
            f"{row.job_id:<24} {row.every_seconds:>9.0f}  {_when(row.last_run) + by:<36} "
            f"{row.next_run_at.isoformat(timespec='seconds'):<25}  {last_error}"
        )
