"""Rebuild a projection from position zero into shadow tables, then swap them in atomically."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import Connection
from psycopg.sql import SQL, Identifier

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.projection_halts import drop_halts, move_halts
from adapters.postgres.projection_runner import ProjectionRunner, ensure_tracking_row
from adapters.postgres.wakeup_channel import wake_everyone
from projections.base import Projection

SHADOW_SUFFIX = "__rebuild"


# Events the swap may apply while it holds the live tracking row (the live runner's pause):
# the rebuild chases the tail without the lock until it is this close to the head.
SWAP_GAP_LIMIT = 1_000
# Chases before the swap takes whatever gap it finds (a write rate above the rebuild's own).
MAX_SWAP_ATTEMPTS = 20


class _GapTooWideError(Exception):
    """The head ran away between the chase and the lock: let go of the lock, chase again."""


def rebuild(
    projection: Projection,
    url: DatabaseUrl,
    *,
    batch_size: int = 500,
    progress: Callable[[int], None] | None = None,
    paused: Callable[[int], None] | None = None,
    swap_gap_limit: int = SWAP_GAP_LIMIT,
) -> int:
    """Rebuild `projection`; readers see the old tables until the new ones are complete.

    The bulk of the log is replayed into shadow tables while the live projection keeps
    running. The swap then locks the live tracking row (pausing the live runner between
    batches), applies what arrived since, up to the head it saw when it took the lock,
    renames the tables and moves the live position, all in one transaction. Under sustained
    writes the pause stays bounded: the chase runs without the lock until the gap is at most
    `swap_gap_limit` events, the swap lets go and chases again if the head ran further
    meanwhile, and events after the head it saw are the live runner's once it swapped.

    An event that fails halts its org in the rebuilt model (as in the live one); the swap
    hands those halts to the live projection. `paused` is told how many events the swap
    applied under the lock. Returns the position the rebuilt model stands at.
    """
    shadows = {table: f"{table}{SHADOW_SUFFIX}" for table in projection.tables}
    tracking = f"{projection.name}{SHADOW_SUFFIX}"
    runner = ProjectionRunner(
        projection, url, batch_size=batch_size, tables=shadows, tracking_name=tracking
    )
    with psycopg.connect(url.libpq()) as conn:
        with conn.transaction(), conn.cursor() as cur:
            for table, shadow in shadows.items():
                cur.execute(SQL("DROP TABLE IF EXISTS {}").format(Identifier(shadow)))
                cur.execute(
                    SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL)").format(
                        Identifier(shadow), Identifier(table)
                    )
                )
            cur.execute("DELETE FROM projection_tracking WHERE name = %s", (tracking,))
            drop_halts(cur, tracking)
        runner.ensure_tracking(conn)
        ensure_tracking_row(conn, projection.name)
        for attempt in range(1, MAX_SWAP_ATTEMPTS + 1):
            _chase(conn, runner, progress, swap_gap_limit)
            try:
                return _swap_in(
                    conn,
                    runner,
                    projection,
                    shadows,
                    gap_limit=swap_gap_limit if attempt < MAX_SWAP_ATTEMPTS else None,
                    progress=progress,
                    paused=paused,
                )
            except _GapTooWideError:
                continue
    raise AssertionError("unreachable: the last attempt swaps whatever the gap")


def _chase(
    conn: Connection[Any],
    runner: ProjectionRunner,
    progress: Callable[[int], None] | None,
    gap_limit: int,
) -> None:
    """Apply batches to the shadow until it is within `gap_limit` events of the head."""
    while True:
        applied = runner.step(conn)
        if progress is not None and applied:
            progress(applied)
        if applied == 0 or _head(conn) - runner.position(conn) <= gap_limit:
            return


def _head(conn: Connection[Any]) -> int:
    with conn.transaction():
        row = conn.execute("SELECT coalesce(max(notification_id), 0) FROM teaim_events")
        found = row.fetchone()
    return 0 if found is None else int(found[0])


def _swap_in(
    conn: Connection[Any],
    runner: ProjectionRunner,
    projection: Projection,
    shadows: dict[str, str],
    *,
    gap_limit: int | None,
    progress: Callable[[int], None] | None,
    paused: Callable[[int], None] | None,
) -> int:
    tracking = runner.name
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            "SELECT position FROM projection_tracking WHERE name = %s FOR UPDATE",
            (projection.name,),
        )
        # Appends hold an EXCLUSIVE lock on the log, so every position up to this head is
        # committed and visible: the shadow can stand exactly there.
        target = _head(conn)
        cur.execute("SELECT position FROM projection_tracking WHERE name = %s", (tracking,))
        row = cur.fetchone()
        assert row is not None
        if gap_limit is not None and target - int(row[0]) > gap_limit:
            raise _GapTooWideError
        under_lock = 0
        while True:
            applied = runner.apply_in(cur, runner.batch_size, upto=target)
            if applied == 0:
                break
            under_lock += applied
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
        move_halts(cur, tracking, projection.name)
        cur.execute("DELETE FROM projection_tracking WHERE name = %s", (tracking,))
        # Streams look again at commit: the swapped-in rows were never announced.
        wake_everyone(cur, projection.name)
    if paused is not None:
        paused(under_lock)
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
