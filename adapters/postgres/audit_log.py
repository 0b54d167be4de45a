"""The auditors' reads of the raw event store (the scheduler's sealing job uses them too).

Two pools: auditors' reads (replay, verify, as-of) on one, the sealer's short head queries on
the other, so however many auditors stream, the sealer still gets a connection. A stream reads
in keyset chunks (`notification_id > last ORDER BY notification_id LIMIT n`), each chunk in its
own short transaction: a slow consumer holds neither a transaction (which would pin the
vacuum horizon) nor a connection between chunks. Chunks taken in different snapshots still
join into one consistent history: positions are assigned under an exclusive lock held to the
commit, so every snapshot sees a gap-free prefix of the log and a later chunk only adds to it.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.read_busy import unavailable_on_overload
from adapters.postgres.read_db import TENANT_SETTING
from application.auditing import AuditedEvent, ChainHead
from domain.seal import LOG_ORG

# Rows per chunk of a stream: memory stays flat however long the history, and a round trip
# (and a transaction) per 500 rows costs little next to decoding them.
STREAM_BATCH = 500
# Events of a project's aggregates stamped outside it that a stream merges in: one is already
# a break verify names; the cap bounds what a store full of forgeries can make a read cost.
STRAYS_LIMIT = 1000
# How the two pools name themselves to the server (pg_stat_activity.application_name).
READER_NAME = "teaim-audit-read"
SEALER_NAME = "teaim-audit-seal"
# An auditor's read waits this long for a reader connection, and a chunk's statement runs at
# most this long: beyond either the request is told to retry (a 503, `read_busy`), never a
# 500, and never a thread parked for the pool's default half-minute.
READER_WAIT_SECONDS = 5.0
READER_STATEMENT_TIMEOUT_MS = 30_000

# The heads of one scope (a project, or an org's aggregates of no project) in a range.
_SCOPE_HEADS = (
    "SELECT DISTINCT ON (originator_id) originator_id, originator_version,"
    " notification_id, chain_hash FROM teaim_events"
    " WHERE {scope} AND org_id = %s AND notification_id > %s AND notification_id <= %s"
    " ORDER BY originator_id, originator_version DESC"
)
_SCOPE_CUT = (
    "SELECT notification_id FROM teaim_events"
    " WHERE {scope} AND org_id = %s AND notification_id > %s AND originator_id <> %s"
    " ORDER BY notification_id OFFSET %s LIMIT 1"
)
# Positions are bigints.
_NO_BOUND = 2**63 - 1
_COLUMNS = (
    "notification_id, originator_id, originator_version, topic, state, org_id, project_id,"
    " content_hash, chain_hash, recorded_at"
)


class PostgresAuditLog:
    """Implements application.auditing.AuditLog on `teaim_events` (two small pools of its own).

    Auditors' reads are long (a whole project's history): pools of their own keep them from
    starving the pool the query API serves the bell and lists from, and the sealer's pool
    keeps them from starving the sealer.
    """

    def __init__(
        self,
        url: DatabaseUrl,
        *,
        max_size: int = 4,
        sealer_size: int = 2,
        chunk_size: int = STREAM_BATCH,
        reader_wait_seconds: float = READER_WAIT_SECONDS,
    ) -> None:
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        self._chunk = chunk_size
        self._pool = _pool(
            url, READER_NAME, max_size, reader_wait_seconds, READER_STATEMENT_TIMEOUT_MS
        )
        self._sealer_pool = _pool(url, SEALER_NAME, sealer_size)

    @contextmanager
    def project_events(self, org_id: UUID, project_id: UUID) -> Iterator[Iterator[AuditedEvent]]:
        """The project's events in position order, read in chunks of short transactions.

        Merged in: events of the project's aggregates stamped with another org or project (a
        forged version the repository would load all the same), read first in one query.
        """
        strays = self._strays(org_id, project_id)
        # The (project_id, notification_id) index gives each chunk in log order without a sort.
        stamped = self._chunks(org_id, "project_id = %s AND org_id = %s", (project_id, org_id))
        yield heapq.merge(strays, stamped, key=lambda event: event.position)

    @contextmanager
    def all_events(self) -> Iterator[Iterator[AuditedEvent]]:
        """Every event of the store in position order (the primary key), in chunks."""
        yield self._chunks(None, "TRUE", ())

    def scope_heads(
        self, org_id: UUID, project_id: UUID | None, after: int = 0, through: int | None = None
    ) -> list[ChainHead]:
        """The newest event up to `through` of every aggregate of the scope (a project, or the
        org's aggregates of no project) with an event after position `after`, in one statement
        (one snapshot): a range of the scope's index, so the read is as long as the news."""
        bound = _NO_BOUND if through is None else through
        scope, params = _scope(org_id, project_id)
        with self._tenant(org_id, self._sealer_pool) as conn:
            rows = conn.execute(
                _SCOPE_HEADS.format(scope=scope), (*params, after, bound)
            ).fetchall()
        return [_head(row) for row in rows]

    def scope_cut(
        self, org_id: UUID, project_id: UUID | None, after: int, count: int, excluding: UUID
    ) -> int | None:
        """The position of the scope's `count`-th event after `after`, those of `excluding`
        aside: a range of the scope's index."""
        scope, params = _scope(org_id, project_id)
        with self._tenant(org_id, self._sealer_pool) as conn:
            row = conn.execute(
                _SCOPE_CUT.format(scope=scope), (*params, after, excluding, max(count - 1, 0))
            ).fetchone()
        return None if row is None else int(row["notification_id"])

    def seal_heads_after(self, position: int, topic: str) -> list[ChainHead]:
        """The newest seal (events of `topic`) of every scope sealed after `position`, the
        log's own aside: a range of the primary key, so the read is as long as the news."""
        with self._sealer_pool.connection() as conn:
            rows = conn.execute(
                "SELECT DISTINCT ON (originator_id) originator_id, originator_version,"
                " notification_id, chain_hash FROM teaim_events"
                " WHERE notification_id > %s AND topic = %s AND org_id <> %s"
                " ORDER BY originator_id, originator_version DESC",
                (position, topic, LOG_ORG),
            ).fetchall()
        return [_head(row) for row in rows]

    def chain_links(self, keys: Sequence[tuple[UUID, int]]) -> dict[tuple[UUID, int], ChainHead]:
        """The stored position and chain hash of each (aggregate, version) found."""
        if not keys:
            return {}
        with unavailable_on_overload(), self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT e.originator_id, e.originator_version, e.notification_id, e.chain_hash"
                " FROM teaim_events AS e"
                " JOIN unnest(%s::uuid[], %s::bigint[]) AS k(originator_id, originator_version)"
                " ON e.originator_id = k.originator_id"
                " AND e.originator_version = k.originator_version",
                ([key[0] for key in keys], [key[1] for key in keys]),
            ).fetchall()
        heads = [_head(row) for row in rows]
        return {(head.originator_id, head.version): head for head in heads}

    def orgs_changed_after(self, position: int) -> list[UUID]:
        """Orgs with an event stamped with no project after `position` (the log's seal aside)."""
        with self._sealer_pool.connection() as conn:
            rows = conn.execute(
                "SELECT DISTINCT org_id FROM teaim_events"
                " WHERE notification_id > %s AND project_id IS NULL AND org_id <> %s"
                " ORDER BY org_id",
                (position, LOG_ORG),
            ).fetchall()
        return [row["org_id"] for row in rows]

    def projects_changed_after(self, position: int) -> list[tuple[UUID, UUID]]:
        """(org, project) pairs with an event after `position` (a range of the primary key)."""
        with self._sealer_pool.connection() as conn:
            rows = conn.execute(
                "SELECT DISTINCT org_id, project_id FROM teaim_events"
                " WHERE notification_id > %s AND project_id IS NOT NULL"
                " ORDER BY org_id, project_id",
                (position,),
            ).fetchall()
        return [(row["org_id"], row["project_id"]) for row in rows]

    def project_org(self, project_id: UUID) -> UUID | None:
        """The org of the project's first event."""
        with unavailable_on_overload(), self._pool.connection() as conn:
            row = conn.execute(
                "SELECT org_id FROM teaim_events WHERE project_id = %s"
                " ORDER BY notification_id LIMIT 1",
                (project_id,),
            ).fetchone()
        return None if row is None else UUID(str(row["org_id"]))

    def last_position(self) -> int:
        """The newest position in the store."""
        with self._sealer_pool.connection() as conn:
            row = conn.execute("SELECT coalesce(max(notification_id), 0) AS n FROM teaim_events")
            found = row.fetchone()
        return 0 if found is None else int(found["n"])

    def _strays(self, org_id: UUID, project_id: UUID) -> list[AuditedEvent]:
        """Events of the project's aggregates stamped with another org or project (bounded)."""
        with unavailable_on_overload(), self._pool.connection() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM teaim_events"  # noqa: S608 (constant column list)
                " WHERE originator_id IN (SELECT originator_id FROM teaim_events"
                " WHERE project_id = %s AND org_id = %s)"
                " AND (project_id IS DISTINCT FROM %s OR org_id <> %s)"
                " ORDER BY notification_id LIMIT %s",
                (project_id, org_id, project_id, org_id, STRAYS_LIMIT),
            ).fetchall()
        return [_event(row) for row in rows]

    def close(self) -> None:
        """Close both pools."""
        try:
            self._pool.close()
        finally:
            self._sealer_pool.close()

    def _chunks(
        self, org_id: UUID | None, where: str, params: tuple[Any, ...]
    ) -> Iterator[AuditedEvent]:
        """Rows matching `where`, in position order, one short transaction per chunk.

        Each chunk is fetched whole and its connection returned before the first row is
        handed on: a consumer that pauses between rows holds nothing on the server.
        """
        after = 0
        sql = (
            f"SELECT {_COLUMNS} FROM teaim_events"  # noqa: S608 (constant SQL of this module)
            f" WHERE {where} AND notification_id > %s ORDER BY notification_id LIMIT %s"
        )
        while True:
            with self._tenant(org_id, self._pool) as conn:
                rows = conn.execute(sql, (*params, after, self._chunk)).fetchall()
            for row in rows:
                yield _event(row)
            if len(rows) < self._chunk:
                return
            after = int(rows[-1]["notification_id"])

    @contextmanager
    def _tenant(
        self, org_id: UUID | None, pool: ConnectionPool[psycopg.Connection[DictRow]] | None = None
    ) -> Iterator[psycopg.Connection[DictRow]]:
        # One transaction naming its tenant, as every tenant read does (row-level security).
        with (
            unavailable_on_overload(),
            (pool or self._pool).connection() as conn,
            conn.transaction(),
        ):
            if org_id is not None:
                conn.execute("SELECT set_config(%s, %s, true)", (TENANT_SETTING, str(org_id)))
            yield conn


def _scope(org_id: UUID, project_id: UUID | None) -> tuple[str, tuple[object, ...]]:
    """The condition (and its parameters, then the org's) selecting one scope's events."""
    if project_id is None:
        return "project_id IS NULL", (org_id,)
    return "project_id = %s", (project_id, org_id)


def _pool(
    url: DatabaseUrl,
    name: str,
    size: int,
    wait_seconds: float = 30.0,
    statement_timeout_ms: int = 0,
) -> ConnectionPool[psycopg.Connection[DictRow]]:
    kwargs: dict[str, Any] = {"row_factory": dict_row, "application_name": name}
    if statement_timeout_ms:
        kwargs["options"] = f"-c statement_timeout={statement_timeout_ms}"
    return ConnectionPool(
        url.libpq(),
        # Audits and seals are occasional: no connection is held open until one runs.
        min_size=0,
        max_size=size,
        timeout=wait_seconds,
        kwargs=kwargs,
        connection_class=psycopg.Connection[DictRow],
        name=name,
        open=True,
    )


def _event(row: dict[str, Any]) -> AuditedEvent:
    return AuditedEvent(
        position=int(row["notification_id"]),
        originator_id=row["originator_id"],
        originator_version=int(row["originator_version"]),
        topic=row["topic"],
        state=bytes(row["state"]),
        org_id=row["org_id"],
        project_id=row["project_id"],
        content_hash=bytes(row["content_hash"]),
        chain_hash=bytes(row["chain_hash"]),
        recorded_at=row["recorded_at"],
    )


def _head(row: dict[str, Any]) -> ChainHead:
    return ChainHead(
        originator_id=row["originator_id"],
        version=int(row["originator_version"]),
        position=int(row["notification_id"]),
        chain_hash=bytes(row["chain_hash"]),
    )
