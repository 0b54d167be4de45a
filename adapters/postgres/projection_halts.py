"""Per-org halts of a log follower (projection or reactor): the store both runners share.

A follower that cannot apply an event halts the event's org only: one row in
`projection_halts` (tracking name, org) records the first event of the org not applied yet
(`position`), the event that failed and why. The follower goes on with every other org and
moves its tracked position past the org's later events without applying them: they are
*held*. Held events are not copied anywhere; they are re-read from the log by position
(`org_id = org AND position <= notification_id <= tracked position`), which the
`teaim_events (org_id, notification_id)` index serves.

`resume` only asks: it sets `resume_requested`, and the follower itself re-applies the held
events in order (under its tracking lock, so exactly once), then deletes the row. Every
change keeps `projection_tracking.halted_orgs` equal to the number of rows, which readers
check cheaply (the tracking table holds no tenant data) before asking for their own org.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection, Cursor

# Bounds what one halt keeps of an error (a driver message can quote a whole statement).
MAX_ERROR_CHARS = 4000


@dataclass(frozen=True, slots=True)
class Halt:
    """One org's halted follower: held from `position`, failed at `failed_position`."""

    name: str
    org_id: UUID
    position: int
    failed_position: int
    event: str
    error: str
    resume_requested: bool
    halted_at: datetime | None = None


_COLUMNS = "name, org_id, position, failed_position, event, error, resume_requested, halted_at"


def _halt(row: Sequence[Any]) -> Halt:
    name, org, position, failed, event, error, resume, halted_at = row
    return Halt(str(name), org, int(position), int(failed), event, error, bool(resume), halted_at)


def load_halts(cur: Cursor[Any], name: str) -> dict[UUID, Halt]:
    """The halted orgs of one follower (inside its locked transaction)."""
    cur.execute(
        f"SELECT {_COLUMNS} FROM projection_halts WHERE name = %s",  # noqa: S608
        (name,),
        prepare=True,
    )
    return {row[1]: _halt(row) for row in cur.fetchall()}


def add_halt(
    cur: Cursor[Any], name: str, org_id: UUID, position: int, event: str, error: str
) -> None:
    """Halt `org_id` at `position` (the event that failed is the first one held)."""
    cur.execute(
        "INSERT INTO projection_halts (name, org_id, position, failed_position, event, error)"
        " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (name, org_id) DO NOTHING",
        (name, org_id, position, position, event, error[:MAX_ERROR_CHARS]),
    )
    _recount(cur, name)


def note_failure(
    cur: Cursor[Any], name: str, org_id: UUID, position: int, event: str, error: str
) -> None:
    """A resume failed again at `position`: record it, and wait for the next resume."""
    cur.execute(
        "UPDATE projection_halts SET failed_position = %s, event = %s, error = %s,"
        " resume_requested = false, updated_at = now() WHERE name = %s AND org_id = %s",
        (position, event, error[:MAX_ERROR_CHARS], name, org_id),
    )


def advance_halt(cur: Cursor[Any], name: str, org_id: UUID, position: int) -> None:
    """The held events before `position` are applied now."""
    cur.execute(
        "UPDATE projection_halts SET position = %s, updated_at = now()"
        " WHERE name = %s AND org_id = %s",
        (position, name, org_id),
    )


def clear_halt(cur: Cursor[Any], name: str, org_id: UUID) -> None:
    """Every held event is applied: the org follows the log again."""
    cur.execute("DELETE FROM projection_halts WHERE name = %s AND org_id = %s", (name, org_id))
    _recount(cur, name)


def move_halts(cur: Cursor[Any], source: str, target: str) -> None:
    """Give `target` the halts of `source` (a rebuild's shadow), replacing its own."""
    cur.execute("DELETE FROM projection_halts WHERE name = %s", (target,))
    cur.execute("UPDATE projection_halts SET name = %s WHERE name = %s", (target, source))
    _recount(cur, target)


def drop_halts(cur: Cursor[Any], name: str) -> None:
    """Forget every halt of `name` (a rebuild's shadow starting afresh)."""
    cur.execute("DELETE FROM projection_halts WHERE name = %s", (name,))


def request_resume(conn: Connection[Any], name: str, org_id: UUID | None = None) -> int:
    """Ask the follower to re-apply the held events of `org_id` (every halted org when None).

    Also clears a legacy whole-follower stop. Returns how many halts (or stops) it touched.
    """
    with conn.transaction():
        cur = conn.execute(
            "UPDATE projection_halts SET resume_requested = true, updated_at = now()"
            " WHERE name = %s AND (%s::uuid IS NULL OR org_id = %s::uuid)",
            (name, org_id, org_id),
        )
        touched = cur.rowcount
        stopped = conn.execute(
            "UPDATE projection_tracking SET status = 'running', error = NULL,"
            " failed_position = NULL, updated_at = now() WHERE name = %s AND status = 'stopped'",
            (name,),
        )
    return touched + stopped.rowcount


def halts_of(conn: Connection[Any], names: Sequence[str], org_id: UUID | None = None) -> list[Halt]:
    """The halts of these followers (of one org when given), oldest first."""
    with conn.transaction():
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM projection_halts"  # noqa: S608
            " WHERE name = ANY(%s) AND (%s::uuid IS NULL OR org_id = %s::uuid)"
            " ORDER BY halted_at, name, org_id",
            (list(names), org_id, org_id),
        ).fetchall()
    return [_halt(row) for row in rows]


def _recount(cur: Cursor[Any], name: str) -> None:
    cur.execute(
        "UPDATE projection_tracking SET halted_orgs ="
        " (SELECT count(*) FROM projection_halts WHERE name = %s) WHERE name = %s",
        (name, name),
    )
