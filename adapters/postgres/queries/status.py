"""Projection status: the tracking table against the head of the log, and per-org halts."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import psycopg
from psycopg_pool import ConnectionPool

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.projection_runner import statuses
from adapters.postgres.read_busy import unavailable_on_overload
from adapters.postgres.read_db import ReadDatabase, statement_timeout
from projections.status_view import HaltState, ProjectionState

# How long a process trusts what it last read about halts: a halt (or a resume) shows in
# the 503s at most this late, and a busy process asks at most once per period.
HALT_CHECK_SECONDS = 1.0
# Orgs whose halts one process remembers at a time (bounded against many tenants).
MAX_CACHED_ORGS = 10_000


class PostgresProjectionStatus:
    """`ProjectionStatusView`: status read as the owner (the log's head is in the event store),
    halts read through the RLS-bound read database (an org sees only its own)."""

    def __init__(
        self,
        url: DatabaseUrl,
        names: Sequence[str],
        read_db: ReadDatabase,
        *,
        halt_check_seconds: float = HALT_CHECK_SECONDS,
    ) -> None:
        self._names = tuple(names)
        self._read_db = read_db
        self._ttl = halt_check_seconds
        # Small: the admin status route is rare; a pool spares it a connection per call.
        # Bounded as the read pool is (its timeouts): concurrent admin calls beyond its size
        # wait that long, then answer 503, never a 500 after psycopg_pool's 30 seconds.
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            url.libpq(),
            min_size=0,
            max_size=2,
            kwargs={"autocommit": True, "application_name": "teaim-projection-status"},
            configure=statement_timeout(read_db.statement_timeout_ms),
            timeout=read_db.pool_timeout,
            open=True,
        )
        self._lock = threading.Lock()
        self._refreshing = threading.Lock()
        self._any: tuple[float, bool] = (0.0, False)
        self._orgs: dict[UUID, tuple[float, frozenset[str]]] = {}

    def states(self, org_id: UUID | None = None) -> list[ProjectionState]:
        """Every named projection, in order (never run: position 0)."""
        with unavailable_on_overload(), self._pool.connection() as conn:
            found = statuses(conn, self._names, org_id=org_id)
        return [
            ProjectionState(
                name=s.name,
                position=s.position,
                head=s.head,
                lag_events=s.lag_events,
                lag_seconds=s.lag_seconds,
                status=s.status,
                error=s.error,
                failed_position=s.failed_position,
                updated_at=s.updated_at,
                halts=tuple(
                    HaltState(
                        org_id=h.org_id,
                        position=h.position,
                        failed_position=h.failed_position,
                        event=h.event,
                        error=h.error,
                        resume_requested=h.resume_requested,
                        halted_at=h.halted_at,
                    )
                    for h in s.halts
                ),
            )
            for s in found
        ]

    def halted_if_cached(self, org_id: UUID) -> frozenset[str] | None:
        """What `halted` answers when it needs no query (None: it would ask the database)."""
        now = time.monotonic()
        expires, any_halted = self._any
        if expires <= now:
            return None
        if not any_halted:
            return frozenset()
        cached = self._orgs.get(org_id)
        return cached[1] if cached is not None and cached[0] > now else None

    def halted(self, org_id: UUID) -> frozenset[str]:
        """The read models halted for `org_id`; nothing asked per org while none is halted."""
        now = time.monotonic()
        if not self._any_halted(now):
            return frozenset()
        cached = self._orgs.get(org_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        rows = self._read_db.tenant_rows(
            org_id,
            "SELECT name FROM projection_halts WHERE org_id = %s AND name = ANY(%s)",
            (org_id, list(self._names)),
        )
        names = frozenset(str(row[0]) for row in rows)
        with self._lock:
            if len(self._orgs) >= MAX_CACHED_ORGS:
                self._orgs.clear()
            self._orgs[org_id] = (now + self._ttl, names)
        return names

    def _any_halted(self, now: float) -> bool:
        expires, halted = self._any
        if expires > now:
            return halted
        # One refresh at a time: requests arriving meanwhile answer from the last figure
        # (queries run in threads, and a herd of them would each take a pool connection);
        # only before the first figure is read do they wait for it.
        if not self._refreshing.acquire(blocking=expires == 0.0):
            return halted
        try:
            expires, halted = self._any
            if expires > time.monotonic():
                return halted
            return self._read_any_halted(now)
        finally:
            self._refreshing.release()

    def _read_any_halted(self, now: float) -> bool:
        with self._read_db.system() as cur:
            cur.execute(
                "SELECT coalesce(sum(halted_orgs), 0) AS halted FROM projection_tracking"
                " WHERE name = ANY(%s)",
                (list(self._names),),
            )
            row = cur.fetchone()
        halted = row is not None and int(row["halted"]) > 0
        self._any = (now + self._ttl, halted)
        if not halted:
            self._orgs.clear()
        return halted

    def close(self) -> None:
        """Close the status pool."""
        self._pool.close()
