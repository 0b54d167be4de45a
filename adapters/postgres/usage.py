"""Per-org request counts: counted in memory per process, added to `request_usage` in batches.

The request path only bumps a dict entry; a thread writes the accumulated counts every few
seconds with additive upserts, so any number of processes sum correctly in the table. Counts
a process holds when it dies uncleanly (not yet written) are lost: at most one interval's worth.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import psycopg

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.periodic_flush import PeriodicFlush
from adapters.postgres.read_db import ReadDatabase

log = logging.getLogger("teaim.usage")

_UPSERT = (
    "INSERT INTO request_usage (org_id, hour, method, route, status, requests, duration_ms)"
    " VALUES (%(org_id)s, %(hour)s, %(method)s, %(route)s, %(status)s, %(requests)s,"
    " %(duration_ms)s)"
    " ON CONFLICT (org_id, hour, method, route, status) DO UPDATE SET"
    " requests = request_usage.requests + EXCLUDED.requests,"
    " duration_ms = request_usage.duration_ms + EXCLUDED.duration_ms"
)
# Pending counts are held per key (org, hour, method, route, status) until written. While the
# database cannot be written (down for long) keys pile up, so memory is bounded twice:
# - each org holds at most PER_ORG_PENDING_KEYS keys: a new key of an org at its share is
#   dropped, so one busy (or hostile) org cannot crowd out the other orgs' counts;
# - the process holds at most MAX_PENDING_KEYS keys in all (only reached with 50 orgs at
#   their share): a new key of any org is then dropped.
# Requests for a key already held are always counted. Every dropped request is counted per
# org and logged, with the org id, at the next write.
PER_ORG_PENDING_KEYS = 1_000
MAX_PENDING_KEYS = 50_000
# How far back GET /api/admin/usage may look: retention (USAGE_RETENTION_DAYS) is never less.
USAGE_WINDOW_DAYS = 92
# Rows deleted per statement when pruning: each batch is its own short transaction.
PRUNE_BATCH_ROWS = 5_000
# At most this many batches per pruning run; what is left goes in the next run.
PRUNE_MAX_BATCHES = 200

_Key = tuple[str, int, str, str, int]  # org id, hour (epoch seconds), method, route, status


@dataclass(frozen=True)
class RouteUsage:
    """Requests one org made to one route with one outcome over a window."""

    method: str
    route: str
    status: int
    requests: int
    mean_ms: float


class UsageRecorder:
    """Counts requests per org, hour, route and status; writes them out every `interval`."""

    def __init__(
        self,
        url: Callable[[], DatabaseUrl],
        *,
        interval: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # A connection of its own per write (one every few seconds): no pool of the runtime's
        # is used, so writing the last counts still works however shutdown is ordered. The
        # URL is looked up when writing: the app may be built before the runtime has one.
        self._url = url
        self._clock = clock  # epoch seconds; requests are counted in the hour it names
        self._pending: dict[_Key, list[float]] = {}
        self._org_keys: dict[str, int] = {}  # keys each org holds in _pending
        self._lock = threading.Lock()
        self._writer = PeriodicFlush(self.flush, interval=interval, name="usage-writer", log=log)
        self._dropped: dict[str, int] = {}  # requests not counted, per org

    def add(self, org_id: str, method: str, route: str, status: int, seconds: float) -> None:
        """Count one request (called on the request path: a dict update under a lock)."""
        now = self._clock()
        key = (org_id, int(now) // 3600 * 3600, method, route, status)
        with self._lock:
            self._count(key, 1, seconds * 1000.0)

    def _count(self, key: _Key, requests: float, total_ms: float) -> None:
        """Add to a key's counts, or hold a new key if its org and the process have room
        (the caller holds the lock)."""
        entry = self._pending.get(key)
        if entry is not None:
            entry[0] += requests
            entry[1] += total_ms
            return
        org = key[0]
        held = self._org_keys.get(org, 0)
        if held < PER_ORG_PENDING_KEYS and len(self._pending) < MAX_PENDING_KEYS:
            self._pending[key] = [requests, total_ms]
            self._org_keys[org] = held + 1
        else:
            self._dropped[org] = self._dropped.get(org, 0) + int(requests)

    def pending(self) -> dict[str, int]:
        """Requests counted but not yet written, per org."""
        with self._lock:
            totals: dict[str, int] = {}
            for key, (count, _) in self._pending.items():
                totals[key[0]] = totals.get(key[0], 0) + int(count)
            return totals

    def flush(self) -> int:
        """Write what was counted so far; how many rows were upserted."""
        with self._lock:
            pending, self._pending = self._pending, {}
            dropped, self._dropped = self._dropped, {}
            self._org_keys = {}
        for org, requests in sorted(dropped.items()):
            log.warning(
                {
                    "event": "request counts dropped: the usage table could not be written",
                    "org_id": org,
                    "dropped_requests": requests,
                }
            )
        if not pending:
            return 0
        rows = [
            {
                "org_id": UUID(org),
                "hour": datetime.fromtimestamp(hour, UTC),
                "method": method,
                "route": route,
                "status": status,
                "requests": int(count),
                "duration_ms": total_ms,
            }
            # Sorted: concurrent flushes from several processes take row locks in one order.
            for (org, hour, method, route, status), (count, total_ms) in sorted(pending.items())
        ]
        try:
            with (
                psycopg.connect(self._url().libpq(), connect_timeout=10) as conn,
                conn.cursor() as cur,
            ):
                cur.executemany(_UPSERT, rows)
        except Exception:
            self._restore(pending)
            raise
        return len(rows)

    def _restore(self, pending: dict[_Key, list[float]]) -> None:
        """Put counts that could not be written back, to go out with the next flush."""
        with self._lock:
            for key, (count, total_ms) in pending.items():
                self._count(key, count, total_ms)

    def start(self) -> None:
        """Write out every interval on a daemon thread (idempotent)."""
        self._writer.start()

    def stop(self) -> None:
        """Stop the thread and write what is left (a failure is logged, not raised)."""
        self._writer.stop()


def usage_by_route(read_db: ReadDatabase, org_id: UUID, since: datetime) -> list[RouteUsage]:
    """One org's requests per route and status since `since` (hour buckets), busiest first."""
    with read_db.tenant(org_id) as cur:
        cur.execute(
            "SELECT method, route, status, sum(requests) AS requests,"
            " sum(duration_ms) AS duration_ms FROM request_usage"
            " WHERE org_id = %s AND hour >= %s GROUP BY method, route, status"
            " ORDER BY requests DESC, route, method, status",
            (org_id, since),
        )
        found = cur.fetchall()
    return [
        RouteUsage(
            method=str(row["method"]),
            route=str(row["route"]),
            status=int(row["status"]),
            requests=int(row["requests"]),
            mean_ms=float(row["duration_ms"]) / max(1, int(row["requests"])),
        )
        for row in found
    ]


def prune_usage(url: DatabaseUrl, older_than: timedelta) -> int:
    """Delete usage rows whose hour is older than `older_than`; how many went.

    In batches of PRUNE_BATCH_ROWS, each its own transaction (the connection autocommits), so
    no run holds row locks for long or blocks the writers' upserts; the cut-off is taken once
    from the database's clock, so a long run does not chase the rows written meanwhile.
    """
    deleted = 0
    with psycopg.connect(url.libpq(), connect_timeout=10, autocommit=True) as conn:
        row = conn.execute("SELECT now() - %s::interval", (older_than,)).fetchone()
        assert row is not None
        cutoff = row[0]
        for _ in range(PRUNE_MAX_BATCHES):
            cur = conn.execute(
                "DELETE FROM request_usage WHERE ctid = ANY(ARRAY("
                " SELECT ctid FROM request_usage WHERE hour < %s LIMIT %s))",
                (cutoff, PRUNE_BATCH_ROWS),
            )
            deleted += cur.rowcount
            if cur.rowcount < PRUNE_BATCH_ROWS:
                break
    return deleted
