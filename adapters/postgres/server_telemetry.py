"""Operational records the server observes itself (rate-limit refusals, unhandled errors).

They are not events: a client hammering past its limit would otherwise write one event per
refused request, growing the log without bound. Each process coalesces them in memory - one
sample per (org, kind, sample key) with a count, one counter per (org, kind, UTC day, reason) -
and adds them to `server_telemetry_counts` / `_samples` every few seconds with additive
upserts, so any number of processes sum correctly. Memory is bounded per org and in total,
like the usage counts (a dropped record is counted and logged). The telemetry report reads
these tables beside the projection's (adapters.postgres.queries.telemetry).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.periodic_flush import PeriodicFlush

log = logging.getLogger("teaim.telemetry")

RATE_LIMITED = "rate_limited"
SERVER_ERROR = "server_error"
SERVER_KINDS = (RATE_LIMITED, SERVER_ERROR)
# Samples kept per org and kind in the table (the latest by last occurrence).
SAMPLES_KEPT = 20
# Pending records held in memory between writes.
PER_ORG_PENDING = 200
MAX_PENDING = 10_000
# Longest sample key and actor kept as is.
MAX_TEXT = 256

_COUNT = (
    "INSERT INTO server_telemetry_counts (org_id, kind, day, reason, count)"
    " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (org_id, kind, day, reason)"
    " DO UPDATE SET count = server_telemetry_counts.count + EXCLUDED.count"
)
_SAMPLE = (
    "INSERT INTO server_telemetry_samples (org_id, kind, sample_key, first_at, last_at, actor,"
    " reason, request_id, count, details) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (org_id, kind, sample_key) DO UPDATE SET"
    " count = server_telemetry_samples.count + EXCLUDED.count,"
    " last_at = greatest(server_telemetry_samples.last_at, EXCLUDED.last_at)"
)
_TRIM = (
    "DELETE FROM server_telemetry_samples WHERE org_id = %(org)s AND kind = %(kind)s"
    " AND sample_key NOT IN (SELECT sample_key FROM server_telemetry_samples"
    " WHERE org_id = %(org)s AND kind = %(kind)s ORDER BY last_at DESC LIMIT %(keep)s)"
)


@dataclass
class _Pending:
    first_at: datetime
    last_at: datetime
    actor: str
    reason: str
    request_id: str
    details: dict[str, Any]
    count: int = 1
    days: dict[str, int] = field(default_factory=dict)


_Key = tuple[str, str, str]  # org id, kind, sample key


class ServerTelemetry:
    """Coalesces server-side records per process; writes them out every `interval` seconds."""

    def __init__(
        self,
        url: Callable[[], DatabaseUrl],
        *,
        interval: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._url = url
        self._clock = clock
        self._pending: dict[_Key, _Pending] = {}
        self._per_org: dict[str, int] = {}
        self._dropped: dict[str, int] = {}
        self._lock = threading.Lock()
        self._writer = PeriodicFlush(
            self.flush, interval=interval, name="server-telemetry", log=log
        )

    def rate_limited(
        self, org_id: str, user: str, route: str, policy: str, window: int, request_id: str
    ) -> None:
        """A request refused by a limit: one sample per user, route, policy and window."""
        now = self._clock()
        window_start = int(now.timestamp()) // window * window
        self._add(
            (org_id, RATE_LIMITED, f"{user}|{route}|{policy}|{window_start}"),
            now,
            actor=user,
            reason=policy,
            request_id=request_id,
            details={
                "route": route,
                "policy": policy,
                "window_seconds": window,
                "window_start": datetime.fromtimestamp(window_start, UTC).isoformat(),
            },
        )

    def server_error(self, org_id: str, user: str, route: str, request_id: str) -> None:
        """An unhandled exception: one sample per request (the id ties it to the traceback)."""
        self._add(
            (org_id, SERVER_ERROR, request_id),
            self._clock(),
            actor=user,
            reason=route,
            request_id=request_id,
            details={"route": route},
        )

    def _add(self, key: _Key, now: datetime, **sample: Any) -> None:
        # Ids come from tokens and headers: bounded before they reach a key or a row.
        org, kind, sample_key = key
        if len(sample_key) > MAX_TEXT:
            sample_key = "sha256:" + hashlib.sha256(sample_key.encode()).hexdigest()
        key = (org, kind, sample_key)
        sample["actor"] = str(sample["actor"])[:MAX_TEXT]
        day = now.date().isoformat()
        with self._lock:
            entry = self._pending.get(key)
            if entry is not None:
                entry.count += 1
                entry.last_at = now
                entry.days[day] = entry.days.get(day, 0) + 1
                return
            org = key[0]
            held = self._per_org.get(org, 0)
            if held >= PER_ORG_PENDING or len(self._pending) >= MAX_PENDING:
                self._dropped[org] = self._dropped.get(org, 0) + 1
                return
            self._pending[key] = _Pending(first_at=now, last_at=now, days={day: 1}, **sample)
            self._per_org[org] = held + 1

    def flush(self) -> int:
        """Write what was coalesced so far; how many samples were written."""
        with self._lock:
            pending, self._pending = self._pending, {}
            dropped, self._dropped = self._dropped, {}
            self._per_org = {}
        for org, count in sorted(dropped.items()):
            log.warning(
                {"event": "server telemetry records dropped", "org_id": org, "dropped": count}
            )
        if not pending:
            return 0
        counts: dict[tuple[str, str, str, str], int] = {}
        for (org, kind, _), entry in pending.items():
            for day, n in entry.days.items():
                ckey = (org, kind, day, entry.reason)
                counts[ckey] = counts.get(ckey, 0) + n
        try:
            with (
                psycopg.connect(self._url().libpq(), connect_timeout=10) as conn,
                conn.cursor() as cur,
            ):
                # Sorted: concurrent writers from several processes lock rows in one order.
                cur.executemany(
                    _COUNT,
                    [(UUID(o), k, d, r, n) for (o, k, d, r), n in sorted(counts.items())],
                )
                cur.executemany(
                    _SAMPLE,
                    [
                        (
                            UUID(org),
                            kind,
                            skey,
                            e.first_at,
                            e.last_at,
                            e.actor,
                            e.reason,
                            e.request_id,
                            e.count,
                            Jsonb(e.details),
                        )
                        for (org, kind, skey), e in sorted(pending.items(), key=lambda i: i[0])
                    ],
                )
                for org, kind in sorted({(o, k) for o, k, _ in pending}):
                    cur.execute(_TRIM, {"org": UUID(org), "kind": kind, "keep": SAMPLES_KEPT})
        except Exception:
            with self._lock:
                for key, entry in pending.items():
                    if key not in self._pending:
                        self._pending[key] = entry
            raise
        return len(pending)

    def start(self) -> None:
        """Write out every interval on a daemon thread (idempotent)."""
        self._writer.start()

    def stop(self) -> None:
        """Stop the thread and write what is left (a failure is logged, not raised)."""
        self._writer.stop()
