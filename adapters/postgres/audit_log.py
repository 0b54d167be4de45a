"""The auditors' reads of the raw event store (the scheduler's sealing job uses them too)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import UUID, uuid4

import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.read_db import TENANT_SETTING
from application.auditing import AuditedEvent, ChainHead

# Rows fetched per round trip of a server-side cursor: memory stays flat however long the
# history, and a round trip per 500 rows costs little next to decoding them.
STREAM_BATCH = 500

_COLUMNS = (
    "notification_id, originator_id, originator_version, topic, state, org_id, project_id,"
    " content_hash, chain_hash, recorded_at"
)


class PostgresAuditLog:
    """Implements application.auditing.AuditLog on `teaim_events` (its own small pool).

    Auditors' reads are long (a whole project's history): a separate pool keeps them from
    starving the pool the query API serves the bell and lists from.
    """

    def __init__(self, url: DatabaseUrl, *, max_size: int = 4) -> None:
        self._pool: ConnectionPool[psycopg.Connection[DictRow]] = ConnectionPool(
            url.libpq(),
            # Audits are occasional: no connection is held open until one runs.
            min_size=0,
            max_size=max_size,
            kwargs={"row_factory": dict_row},
            connection_class=psycopg.Connection[DictRow],
            open=True,
        )

    @contextmanager
    def project_events(self, org_id: UUID, project_id: UUID) -> Iterator[Iterator[AuditedEvent]]:
        """The project's events in position order, through a server-side cursor."""
        with self._tenant(org_id) as conn, conn.cursor(name=f"audit_{uuid4().hex}") as cur:
            cur.itersize = STREAM_BATCH
            # The (project_id, notification_id) index gives log order without a sort.
            cur.execute(
                f"SELECT {_COLUMNS} FROM teaim_events"  # noqa: S608 (constant column list)
                " WHERE project_id = %s AND org_id = %s ORDER BY notification_id",
                (project_id, org_id),
            )
            yield (_event(row) for row in cur)

    def project_heads(self, org_id: UUID, project_id: UUID) -> list[ChainHead]:
        """The newest event of every aggregate of the project, in one statement (one snapshot)."""
        with self._tenant(org_id) as conn:
            rows = conn.execute(
                "SELECT DISTINCT ON (originator_id) originator_id, originator_version,"
                " notification_id, chain_hash FROM teaim_events"
                " WHERE project_id = %s AND org_id = %s"
                " ORDER BY originator_id, originator_version DESC",
                (project_id, org_id),
            ).fetchall()
        return [_head(row) for row in rows]

    def chain_links(
        self, org_id: UUID, project_id: UUID, keys: Sequence[tuple[UUID, int]]
    ) -> dict[tuple[UUID, int], ChainHead]:
        """The stored position and chain hash of each (aggregate, version) found."""
        if not keys:
            return {}
        with self._tenant(org_id) as conn:
            rows = conn.execute(
                "SELECT e.originator_id, e.originator_version, e.notification_id, e.chain_hash"
                " FROM teaim_events AS e"
                " JOIN unnest(%s::uuid[], %s::bigint[]) AS k(originator_id, originator_version)"
                " ON e.originator_id = k.originator_id"
                " AND e.originator_version = k.originator_version"
                " WHERE e.project_id = %s AND e.org_id = %s",
                ([key[0] for key in keys], [key[1] for key in keys], project_id, org_id),
            ).fetchall()
        heads = [_head(row) for row in rows]
        return {(head.originator_id, head.version): head for head in heads}

    def projects_changed_after(self, position: int) -> list[tuple[UUID, UUID]]:
        """(org, project) pairs with an event after `position` (a range of the primary key)."""
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT DISTINCT org_id, project_id FROM teaim_events"
                " WHERE notification_id > %s AND project_id IS NOT NULL"
                " ORDER BY org_id, project_id",
                (position,),
            ).fetchall()
        return [(row["org_id"], row["project_id"]) for row in rows]

    def project_org(self, project_id: UUID) -> UUID | None:
        """The org of the project's first event."""
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT org_id FROM teaim_events WHERE project_id = %s"
                " ORDER BY notification_id LIMIT 1",
                (project_id,),
            ).fetchone()
        return None if row is None else UUID(str(row["org_id"]))

    def last_position(self) -> int:
        """The newest position in the store."""
        with self._pool.connection() as conn:
            row = conn.execute("SELECT coalesce(max(notification_id), 0) AS n FROM teaim_events")
            found = row.fetchone()
        return 0 if found is None else int(found["n"])

    def close(self) -> None:
        """Close the pool."""
        self._pool.close()

    @contextmanager
    def _tenant(self, org_id: UUID) -> Iterator[psycopg.Connection[DictRow]]:
        # One transaction naming its tenant, as every tenant read does (row-level security).
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("SELECT set_config(%s, %s, true)", (TENANT_SETTING, str(org_id)))
            yield conn


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
