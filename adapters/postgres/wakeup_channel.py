"""Announcing at commit whose live views a projection batch changed (the bell's recipients).

The runner NOTIFYs `teaim_wakeups` with `projection key key ...` in the batch's transaction,
so PostgreSQL delivers it at commit, when the rows are visible. A key is a short hash of
(org, user): fixed-size whatever the user id, and no user id travels on a channel any role
may LISTEN to. A batch that concerns more users than fit one payload announces `*` (every
stream of that projection wakes once), so a payload never nears PostgreSQL's 8000-byte limit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Set
from typing import Any, Final
from uuid import UUID

from psycopg import Cursor

WAKEUPS_CHANNEL: Final = "teaim_wakeups"
# Beyond this many users in one batch, every stream wakes: 256 keys of 17 bytes is ~4.4 kB.
MAX_WAKE_KEYS: Final = 256
WAKE_ALL: Final = "*"


def wake_key(org_id: UUID, user_id: str) -> str:
    """The key a user's streams subscribe to (collisions only cost a spurious wake-up)."""
    digest = hashlib.blake2b(f"{org_id}\x1f{user_id}".encode(), digest_size=8)
    return digest.hexdigest()


def wakeup_payload(projection: str, wakes: Set[tuple[UUID, str]]) -> str | None:
    """The NOTIFY payload for a batch's wakes (None: nobody to wake)."""
    if not wakes:
        return None
    if len(wakes) > MAX_WAKE_KEYS:
        return f"{projection} {WAKE_ALL}"
    keys = sorted({wake_key(org, user) for org, user in wakes})
    return " ".join((projection, *keys))


def parse_wakeup(payload: str) -> tuple[str, list[str]]:
    """The projection and keys of a payload (keys may be `[WAKE_ALL]`)."""
    projection, *keys = payload.split(" ")
    return projection, keys


def wake_everyone(cur: Cursor[Any], projection: str) -> None:
    """Queue a wake-up of every stream of `projection` (a rebuild swapped its tables in)."""
    cur.execute("SELECT pg_notify(%s, %s)", (WAKEUPS_CHANNEL, f"{projection} {WAKE_ALL}"))


def announce_wakeups(cur: Cursor[Any], projection: str, wakes: Set[tuple[UUID, str]]) -> None:
    """Queue the batch's wake-ups; PostgreSQL sends them when the transaction commits."""
    payload = wakeup_payload(projection, wakes)
    if payload is not None:
        cur.execute("SELECT pg_notify(%s, %s)", (WAKEUPS_CHANNEL, payload))
