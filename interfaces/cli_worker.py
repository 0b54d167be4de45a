"""`teaim worker`: run only the ingestion workers in this process, or show the queue's state."""

from __future__ import annotations

import signal
import threading
from types import FrameType
from uuid import UUID

import click

from adapters.postgres.ingest_host import IngestStats
from adapters.postgres.migrate import UnmigratedDatabaseError
from interfaces.reactors import start_reactors
from interfaces.runtime import Runtime, build_runtime, start_ingest
from interfaces.settings import Settings

# Status lists at most this many orgs (the busiest first).
STATUS_ORG_LIMIT = 1000


def _runtime() -> Runtime:
    try:
        return build_runtime(Settings())
    except UnmigratedDatabaseError as error:
        raise click.ClickException(str(error)) from None


@click.command("worker")
@click.option(
    "--concurrency",
    "-c",
    type=click.IntRange(1, 64),
    default=None,
    help="Worker threads (default: INGEST_WORKERS).",
)
@click.option(
    "--status",
    "show_status",
    is_flag=True,
    help="Print queued/running/done/dead jobs per org, then exit.",
)
@click.option("--org", type=click.UUID, default=None, help="With --status: only this org.")
@click.option(
    "--progress-seconds",
    type=click.FloatRange(min=1),
    default=30.0,
    show_default=True,
    help="How often a progress line is printed.",
)
def worker_command(
    concurrency: int | None, show_status: bool, org: UUID | None, progress_seconds: float
) -> None:
    """Run the ingestion workers in this process until interrupted (scale-out worker).

    Jobs are shared fairly between orgs, at most INGEST_PER_ORG_CONCURRENCY of one org at
    once across every process; `teaim serve` runs workers too unless RUN_INGEST=0.
    """
    if show_status:
        _status(org)
        return
    runtime = _runtime()
    done = threading.Event()

    def _shutdown(signum: int, _frame: FrameType | None) -> None:
        click.echo(f"signal {signum}: stopping after the jobs in progress", err=True)
        done.set()

    signal.signal(signal.SIGTERM, _shutdown)
    signal.signal(signal.SIGINT, _shutdown)
    host = None
    try:
        host = start_ingest(runtime, workers=concurrency)
        if host is None:
            raise click.ClickException("no ingest handler is wired: nothing would run the jobs")
        if runtime.ingest_queue is not None:
            # Uploads become jobs even when no `teaim serve` runs projections (one leader).
            start_reactors(runtime, runtime.ingest_queue)
        click.echo(
            f"ingest worker {host.name}: {host.config.workers} threads, per-org cap"
            f" {host.config.per_org_cap}; Ctrl-C to stop",
            err=True,
        )
        previous = IngestStats()
        while not done.wait(progress_seconds):
            now = host.stats()
            click.echo(_progress(previous, now, progress_seconds), err=True)
            previous = now
    finally:
        runtime.close()  # lets running jobs finish (or gives them back), then closes
    if host is not None:
        click.echo(_progress(IngestStats(), host.stats(), None), err=True)


def _progress(before: IngestStats, now: IngestStats, seconds: float | None) -> str:
    """One line: jobs done, retried and dead (in the interval, or in all), and running now."""
    span = "in all" if seconds is None else f"in {seconds:.0f}s"
    return (
        f"{span}: done {now.done - before.done}, retried {now.retried - before.retried},"
        f" dead {now.dead - before.dead}, lost {now.lost - before.lost}; running {now.running}"
    )


def _status(org: UUID | None) -> None:
    runtime = _runtime()
    try:
        if runtime.ingest_queue is None:
            raise click.ClickException("this runtime has no ingestion queue")
        rows = runtime.ingest_queue.counts(org, limit=STATUS_ORG_LIMIT)
    finally:
        runtime.close()
    click.echo(f"{'org':<36} {'queued':>8} {'running':>8} {'done':>8} {'dead':>6}  oldest ready")
    for row in rows:
        oldest = "-" if row.oldest_ready_seconds is None else f"{row.oldest_ready_seconds:.0f}s"
        click.echo(
            f"{row.org_id!s:<36} {row.queued:>8} {row.running:>8} {row.done:>8} {row.dead:>6}"
            f"  {oldest}"
        )
    if not rows:
        click.echo("no ingestion jobs")
