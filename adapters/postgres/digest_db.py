"""The connections the digest tick reads through: a small owner pool that counts its queries.

The tick reads many orgs at once (the projects of every org whose slot arrived), which the
RLS-bound query role cannot do in one statement, so it reads as the owner and names the
tenant itself: every statement joins on (org_id, project_id) pairs it was given. A request's
preview reads through the tenant-bound `ReadDatabase` instead (one org, row-level security as
the backstop). Every statement is counted, so the benchmark and the tests can show that a
tick's query count does not grow with the number of projects.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool

from adapters.postgres.database import DatabaseUrl


class QueryCounter:
    """How many statements went to the server through the pool (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0

    def add(self, n: int = 1) -> None:
        """Count `n` statements."""
        with self._lock:
            self._count += n

    @property
    def count(self) -> int:
        """Statements counted so far."""
        with self._lock:
            return self._count


class _CountingCursor(psycopg.Cursor[DictRow]):
    # The counter rides on the connection (set by the pool's `configure`).
    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        counter = getattr(self.connection, "_teaim_counter", None)
        if counter is not None:
            counter.add()
        return super().execute(query, params, **kwargs)


class DigestDatabase:
    """An owner-connection pool for the digest tick's cross-org reads and its bookkeeping."""

    def __init__(self, url: DatabaseUrl, *, max_size: int = 2) -> None:
        self.queries = QueryCounter()
        counter = self.queries

        def configure(conn: psycopg.Connection[Any]) -> None:
            conn.cursor_factory = _CountingCursor
            conn._teaim_counter = counter  # type: ignore[attr-defined]

        self._pool: ConnectionPool[psycopg.Connection[DictRow]] = ConnectionPool(
            url.libpq(),
            min_size=1,
            max_size=max_size,
            kwargs={"row_factory": dict_row, "autocommit": True},
            connection_class=psycopg.Connection[DictRow],
            configure=configure,
            open=True,
        )

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Cursor[DictRow]]:
        """A cursor in one transaction (statements through it are counted)."""
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            yield cur

    def close(self) -> None:
        """Close the pool."""
        self._pool.close()
