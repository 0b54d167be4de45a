"""Commands per second through the application layer, against a raw-insert baseline.

Usage: uv run python -m bench.commands [--seconds 4]

Both sides run against the same database in the same run, so the ratio is meaningful on a
shared, noisy machine where absolute figures drift.
  baseline: psycopg, one INSERT per transaction (autocommit), one connection per writer;
  commands: Teaim.update_memory (guard loads the project, loads the memory, saves one event),
            from threads sharing one application, or from processes (spawned) each with an
            application of its own, as `teaim serve --workers N` runs them.
"""

from __future__ import annotations

import argparse
import multiprocessing
import queue
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import count
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import cast
from uuid import UUID, uuid4

import psycopg

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.recorder import GroupCommitRecorder
from application.app import Teaim
from application.context import CommandContext, Principal
from bench._support import Throughput, run_threads, scratch_database
from domain.roles import Role


class _Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class _Secrets:
    def token(self, nbytes: int) -> str:
        return secrets.token_urlsafe(nbytes)


def raw_insert_baseline(url: DatabaseUrl, writers: int, seconds: float) -> Throughput:
    """One INSERT per transaction, `writers` connections in parallel."""
    with psycopg.connect(url.libpq(), autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_raw (id bigserial PRIMARY KEY, "
            "aggregate uuid NOT NULL, version bigint NOT NULL, state bytea NOT NULL)"
        )
    connections = [psycopg.connect(url.libpq(), autocommit=True) for _ in range(writers)]
    payload = b'{"title":"benchmark memory","body":"x"}'

    def worker(conn: psycopg.Connection[tuple[object, ...]]) -> Callable[[], None]:
        aggregate = uuid4()
        versions = count(1)

        def insert() -> None:
            conn.execute(
                "INSERT INTO bench_raw (aggregate, version, state) VALUES (%s, %s, %s)",
                (aggregate, next(versions), payload),
                prepare=True,
            )

        return insert

    try:
        return run_threads([worker(c) for c in connections], seconds=seconds)
    finally:
        for conn in connections:
            conn.close()


@dataclass(frozen=True)
class Commands:
    """Commands per second, and how many saves each group commit carried on average."""

    throughput: Throughput
    saves_per_commit: float

    @property
    def per_second(self) -> float:
        """Commands per second."""
        return self.throughput.per_second


def _commit_counts(app: Teaim) -> tuple[int, int]:
    """(transactions, saves) the event store's writer committed so far."""
    stats = cast(GroupCommitRecorder, app.recorder).stats()
    return stats.batches, stats.requests


def _per_commit(before: tuple[int, int], after: tuple[int, int]) -> float:
    batches, saves = after[0] - before[0], after[1] - before[1]
    return saves / batches if batches else 0.0


def command_throughput(url: DatabaseUrl, writers: int, seconds: float) -> Commands:
    """`writers` threads each updating their own memory through the application."""
    env = url.eventsourcing_env(pool_size=writers + 2)
    env["AGGREGATE_CACHE_MAXSIZE"] = "1000"
    app = Teaim(env, clock=_Clock(), secrets=_Secrets(), audit_log=None)
    try:
        org = uuid4()
        service = CommandContext(Principal("service:bench", org, Role.OWNER, True), "bench")
        app.create_org(ctx=service, name="Bench")
        workers = []
        for index in range(writers):
            ctx = CommandContext(Principal(f"writer-{index}", org, Role.ADMIN), "bench")
            project = app.create_project(ctx=ctx, code=f"B{index}-{uuid4().hex[:6]}", name="B")
            memory = app.create_memory(
                ctx=ctx, project_id=project.id, title="start", body="", tags=[]
            )
            workers.append(_updater(app, ctx, project.id, memory.id))
        before = _commit_counts(app)
        throughput = run_threads(workers, seconds=seconds)
        return Commands(throughput, _per_commit(before, _commit_counts(app)))
    finally:
        app.close()


def process_throughput(url: DatabaseUrl, writers: int, seconds: float) -> Commands:
    """`writers` spawned processes, each with its own application, updating its own memory."""
    env = url.eventsourcing_env(pool_size=2)
    app = Teaim(env, clock=_Clock(), secrets=_Secrets(), audit_log=None)
    try:
        org = uuid4()
        service = CommandContext(Principal("service:bench", org, Role.OWNER, True), "bench")
        app.create_org(ctx=service, name="Bench")
    finally:
        app.close()
    spawn = multiprocessing.get_context("spawn")
    # Every process sets up first; the clocks start together once all are ready.
    ready = spawn.Barrier(writers)
    results: Queue[tuple[int, float, int, int]] = spawn.Queue()
    processes = [
        spawn.Process(
            target=_process_writer,
            args=(url.libpq(), org, index, seconds, ready, results),
            name=f"bench-writer-{index}",
        )
        for index in range(writers)
    ]
    for process in processes:
        process.start()
    reports: list[tuple[int, float, int, int]] = []
    deadline = time.monotonic() + seconds + 180
    while len(reports) < writers:
        try:
            reports.append(results.get(timeout=1.0))
        except queue.Empty:
            # A writer that died never reports: fail now rather than wait out the deadline.
            failed = [p for p in processes if p.exitcode not in (None, 0)]
            if failed or time.monotonic() > deadline:
                for process in processes:
                    process.kill()
                raise RuntimeError(f"writers failed or hung: {failed or processes}") from None
    for process in processes:
        process.join(30)
    throughput = Throughput(
        operations=sum(r[0] for r in reports),
        seconds=sum(r[1] for r in reports) / len(reports),
    )
    return Commands(
        throughput, _per_commit((0, 0), (sum(r[2] for r in reports), sum(r[3] for r in reports)))
    )


def _process_writer(
    url: str,
    org: UUID,
    index: int,
    seconds: float,
    ready: Barrier,
    results: Queue[tuple[int, float, int, int]],
) -> None:
    env = DatabaseUrl.parse(url).eventsourcing_env(pool_size=2)
    env["AGGREGATE_CACHE_MAXSIZE"] = "1000"
    app = Teaim(env, clock=_Clock(), secrets=_Secrets(), audit_log=None)
    try:
        ctx = CommandContext(Principal(f"process-writer-{index}", org, Role.ADMIN), "bench")
        project = app.create_project(ctx=ctx, code=f"M{index}-{uuid4().hex[:6]}", name="B")
        memory = app.create_memory(ctx=ctx, project_id=project.id, title="start", body="", tags=[])
        update = _updater(app, ctx, project.id, memory.id)
        update()  # warm: plans, caches, connections
        ready.wait(timeout=120)
        batches, saves = _commit_counts(app)
        began = time.perf_counter()
        deadline = began + seconds
        operations = 0
        while time.perf_counter() < deadline:
            update()
            operations += 1
        elapsed = time.perf_counter() - began
        after = _commit_counts(app)
        results.put((operations, elapsed, after[0] - batches, after[1] - saves))
    finally:
        app.close()


def _updater(
    app: Teaim, ctx: CommandContext, project_id: UUID, memory_id: UUID
) -> Callable[[], None]:
    titles = count()

    def update() -> None:
        app.update_memory(
            ctx=ctx,
            project_id=project_id,
            memory_id=memory_id,
            title=f"title {next(titles)}",
        )

    return update


def main() -> None:
    """Measure and print each figure and ratio on its own line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="duration of each run")
    args = parser.parse_args()
    with scratch_database() as url:
        # Warm up both paths (connections, plans, caches) before measuring.
        raw_insert_baseline(url, 1, 0.5)
        command_throughput(url, 1, 0.5)
        base1 = raw_insert_baseline(url, 1, args.seconds)
        base4 = raw_insert_baseline(url, 4, args.seconds)
        cmd1 = command_throughput(url, 1, args.seconds)
        cmd4 = command_throughput(url, 4, args.seconds)
        proc4 = process_throughput(url, 4, args.seconds)
    print(f"baseline raw insert, 1 writer:  {base1.per_second:9.1f} inserts/s")
    print(f"baseline raw insert, 4 writers: {base4.per_second:9.1f} inserts/s")
    print(f"commands, 1 writer:             {cmd1.per_second:9.1f} commands/s")
    print(f"commands, 4 writers:            {cmd4.per_second:9.1f} commands/s")
    print(f"commands, 4 processes:          {proc4.per_second:9.1f} commands/s")
    print(
        f"saves per group commit: 1 writer {cmd1.saves_per_commit:.2f},"
        f" 4 writers {cmd4.saves_per_commit:.2f}, 4 processes {proc4.saves_per_commit:.2f}"
    )
    print(f"ratio commands/baseline, 1 writer:  {cmd1.per_second / base1.per_second:.2f}x")
    print(f"ratio commands/baseline, 4 writers: {cmd4.per_second / base1.per_second:.2f}x")
    print(f"ratio commands/baseline, 4 processes: {proc4.per_second / base1.per_second:.2f}x")
    print(f"ratio commands 4 writers / raw 4 writers: {cmd4.per_second / base4.per_second:.2f}x")
    print(f"ratio commands 4 processes / raw 4 writers: {proc4.per_second / base4.per_second:.2f}x")


if __name__ == "__main__":
    main()
