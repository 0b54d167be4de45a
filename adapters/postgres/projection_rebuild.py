"""Rebuild a projection from position zero into shadow tables, then swap them in atomically."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import Connection
from psycopg.sql import SQL, Identifier

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.projection_runner import ProjectionRunner
from adapters.postgres.wakeup_channel import wake_everyone
from projections.base import Projection

SHADOW_SUFFIX = "__rebuild"


def rebuild(
    projection: Projection,
    url: DatabaseUrl,
    *,
    batch_size: int = 500,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Rebuild `projection`; readers see the old tables until the new ones are complete.

    The bulk of the log is replayed into shadow tables while the live projection keeps
    running. The swap then locks the live tracking row (pausing the live runner between
    batches), applies whatever arrived meanwhile, renames the tables and moves the live
    position, all in one transaction. Returns the position the rebuilt model stands at.
    """
    shadows = {table: f"{table}{SHADOW_SUFFIX}" for table in projection.tables}
    tracking = f"{projection.name}{SHADOW_SUFFIX}"
    runner = ProjectionRunner(
        projection, url, batch_size=batch_size, tables=shadows, tracking_name=tracking
    )
    with psycopg.connect(url.libpq()) as conn:
        with conn.transaction():
            for table, shadow in shadows.items():
                conn.execute(SQL("DROP TABLE IF EXISTS {}").format(Identifier(shadow)))
                conn.execute(
                    SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL)").format(
                        Identifier(shadow), Identifier(table)
                    )
                )
            conn.execute("DELETE FROM projection_tracking WHERE name = %s", (tracking,))
        runner.ensure_tracking(conn)
        runner.catch_up(conn, progress=progress)
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(
                "INSERT INTO projection_tracking (name) VALUES (%s) ON CONFLICT DO NOTHING",
                (projection.name,),
            )
            cur.execute(
                "SELECT position FROM projection_tracking WHERE name = %s FOR UPDATE",
                (projection.name,),
            )
            while True:
                applied = runner.apply_in(cur, batch_size)
                if applied == 0:
                    break
                if progress is not None:
                    progress(applied)
            cur.execute("SELECT position FROM projection_tracking WHERE name = %s", (tracking,))
            row = cur.fetchone()
            assert row is not None
            position = int(row[0])
            for table, shadow in shadows.items():
                _swap(conn, table, shadow)
            cur.execute(
                "UPDATE projection_tracking SET position = %s, status = 'running', error = NULL,"
                " failed_position = NULL, updated_at = now() WHERE name = %s",
                (position, projection.name),
            )
            cur.execute("DELETE FROM projection_tracking WHERE name = %s", (tracking,))
            # Streams look again at commit: the swapped-in rows were never announced.
            wake_everyone(cur, projection.name)
    return position


def _swap(conn: Connection[Any], table: str, shadow: str) -> None:
    """Replace `table` by `shadow`, keeping index and constraint names and security."""
    original = _index_names(conn, table)
    old = f"{table}__old"
    conn.execute(SQL("ALTER TABLE {} RENAME TO {}").format(Identifier(table), Identifier(old)))
    conn.execute(SQL("ALTER TABLE {} RENAME TO {}").format(Identifier(shadow), Identifier(table)))
    conn.execute(SQL("DROP TABLE {}").format(Identifier(old)))
    # LIKE ... INCLUDING ALL named the copies after the shadow table; give them back the
    # names migrations use, so later migrations that refer to them keep working.
    for shape, (name, constraint) in _index_names(conn, table).items():
        wanted = original.get(shape)
        if wanted is None or wanted[0] == name:
            continue
        if constraint is not None:
            conn.execute(
                SQL("ALTER TABLE {} RENAME CONSTRAINT {} TO {}").format(
                    Identifier(table), Identifier(constraint), Identifier(wanted[0])
                )
            )
        else:
            conn.execute(
                SQL("ALTER INDEX {} RENAME TO {}").format(Identifier(name), Identifier(wanted[0]))
            )
    # Row-level security and grants are not copied by LIKE: re-apply them when the tenant
    # backstop is installed.
    secured = conn.execute("SELECT 1 FROM pg_proc WHERE proname = 'teaim_secure_table'").fetchone()
    if secured is not None:
        conn.execute("SELECT teaim_secure_table(%s::regclass)", (table,))


def _index_names(conn: Connection[Any], table: str) -> dict[str, tuple[str, str | None]]:
    """Index shape (definition without names) -> (index name, constraint it backs)."""
    rows = conn.execute(
        "SELECT i.relname, pg_get_indexdef(x.indexrelid), c.conname"
        " FROM pg_index AS x"
        " JOIN pg_class AS i ON i.oid = x.indexrelid"
        " LEFT JOIN pg_constraint AS c ON c.conindid = x.indexrelid"
        " WHERE x.indrelid = %s::regclass",
        (table,),
    ).fetchall()
    shapes: dict[str, tuple[str, str | None]] = {}
    for name, definition, constraint in rows:
        shape = re.sub(r"INDEX \S+ ON \S+", "INDEX ON", str(definition))
        shapes[shape] = (str(name), None if constraint is None else str(constraint))
    return shapes
