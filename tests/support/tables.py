"""Reading the database back as its owner (every tenant): rows, the log's head, tracking."""

from __future__ import annotations

from typing import Any

import psycopg

# The bell's read model: its tables, each with a stable order for comparisons.
NOTIFICATION_TABLES: dict[str, str] = {
    "notifications": "position, recipient",
    "notification_members": "project_id, user_id",
    "notification_subjects": "subject_id",
}


def table_rows(url: str, table: str, order: str) -> list[tuple[Any, ...]]:
    """Every row of a table, in a stable order."""
    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()  # noqa: S608


def head(url: str) -> int:
    """The log's last position."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT coalesce(max(notification_id), 0) FROM teaim_events")
        return int(row.fetchone()[0])  # type: ignore[index]


def tracked(url: str, name: str) -> tuple[int, str, str | None, int | None]:
    """(position, status, error, failed_position) of a projection."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT position, status, error, failed_position FROM projection_tracking"
            " WHERE name = %s",
            (name,),
        ).fetchone()
    assert row is not None
    return int(row[0]), str(row[1]), row[2], row[3]


def dump_notifications(database_url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the bell's tables, in a stable order (as the owner: all tenants)."""
    return {
        table: table_rows(database_url, table, order)
        for table, order in NOTIFICATION_TABLES.items()
    }


def reset_notifications(database_url: str) -> None:
    """Empty the bell's tables and rewind its tracking position (a rebuild from zero)."""
    with psycopg.connect(database_url) as conn:
        conn.execute(f"TRUNCATE {', '.join(NOTIFICATION_TABLES)}")
        conn.execute("DELETE FROM projection_tracking WHERE name = 'notifications'")
