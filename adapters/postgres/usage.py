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
from datetime import UTC, datetime
from uuid import UUID

import psycopg

from adapters.postgres.database import DatabaseUrl
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
# Above this many distinct keys waiting (the database being unreachable for long), new counts
# are dropped rather than held: memory stays bounded, and the loss is logged.
MAX_PENDING_KEYS = 50_000

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

    def __init__(self, url: Callable[[], DatabaseUrl], *, interval: float) -> None:
        # A connection of its own per write (one every few seconds): no pool of the runtime's
        # is used, so writing the last counts still works however shutdown is ordered. The
        # URL is looked up when writing: the app may be built before the runtime has one.
        self._url = url
        self._interval = interval
        self._pending: dict[_Key, list[float]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._dropped = 0

    def add(self, org_id: str, method: str, route: str, status: int, seconds: float) -> None:
        """Count one request (called on the request path: a dict update under a lock)."""
        now = time.time()
        key = (org_id, int(now) // 3600 * 3600, method, route, status)
        with self._lock:
            entry = self._pending.get(key)
            if entry is not None:
                entry[0] += 1
                entry[1] += seconds * 1000.0
            elif len(self._pending) < MAX_PENDING_KEYS:
                self._pending[key] = [1, seconds * 1000.0]
            else:
                self._dropped += 1

    def flush(self) -> int:
        """Write what was counted so far; how many rows were upserted."""
        with self._lock:
            pending, self._pending = self._pending, {}
            dropped, self._dropped = self._dropped, 0
        if dropped:
            log.warning("dropped %d request counts: the usage table could not be written", dropped)
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
                entry = self._pending.get(key)
                if entry is not None:
                    entry[0] += count
                    entry[1] += total_ms
                elif len(self._pending) < MAX_PENDING_KEYS:
                    self._pending[key] = [count, total_ms]
                else:
                    self._dropped += int(count)

    def start(self) -> None:
        """Write counts out every interval on a daemon thread (idempotent)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="usage-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.flush()
            except Exception:
                log.warning("cannot write request usage; will retry", exc_info=True)

    def stop(self) -> None:
        """Stop the thread and write what is left (a failure is logged, not raised)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        try:
            self.flush()
        except Exception:
            log.warning("cannot write the last request usage counts", exc_info=True)


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
