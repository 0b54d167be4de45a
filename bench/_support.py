"""Shared helpers for the benchmark scripts: a scratch database and timed thread runs."""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from uuid import uuid4

import psycopg

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.embedded import EmbeddedPostgres
from adapters.postgres.migrate import upgrade


@contextmanager
def scratch_database() -> Iterator[DatabaseUrl]:
    """A fresh, migrated database: on BENCH_DATABASE_URL's server, or an embedded one.

    The embedded server keeps its default durability (fsync, synchronous_commit on): the
    baselines and the measured code pay the same commit cost.
    """
    external = os.environ.get("BENCH_DATABASE_URL")
    with tempfile.TemporaryDirectory(prefix="teaim-bench-") as tmp:
        embedded = None if external else EmbeddedPostgres(f"{tmp}/pg")
        server = DatabaseUrl.parse(external or embedded.start())  # type: ignore[union-attr]
        name = f"bench_{uuid4().hex[:12]}"
        with psycopg.connect(server.libpq(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = server.with_dbname(name)
        try:
            upgrade(url.libpq())
            yield url
        finally:
            with psycopg.connect(server.libpq(), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            if embedded is not None:
                embedded.stop()


@dataclass(frozen=True)
class Throughput:
    """Operations completed per second by a group of threads."""

    operations: int
    seconds: float

    @property
    def per_second(self) -> float:
        """Operations per second."""
        return self.operations / self.seconds


def run_threads(workers: list[Callable[[], None]], *, seconds: float) -> Throughput:
    """Run each worker's operation in a loop on its own thread for `seconds`; count them."""
    start = threading.Barrier(len(workers) + 1)
    stop = threading.Event()
    counts = [0] * len(workers)
    errors: list[BaseException] = []

    def loop(index: int, operation: Callable[[], None]) -> None:
        start.wait()
        try:
            while not stop.is_set():
                operation()
                counts[index] += 1
        except BaseException as error:  # reported after the run, never swallowed
            errors.append(error)
            stop.set()

    threads = [
        threading.Thread(target=loop, args=(i, w), daemon=True) for i, w in enumerate(workers)
    ]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    stop.wait(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise errors[0]
    return Throughput(operations=sum(counts), seconds=elapsed)
