"""Concurrency slots for slow reads, held as session advisory locks: they hold across processes.

A slot is a session advisory lock on one of N keys derived from who holds it (a principal, an
org). Taking a read takes the first free slot of each scope on one pooled connection, which
keeps them for the read's duration; if the process dies, the connection goes and PostgreSQL
releases its locks, so a crash never leaks a slot. The pool's size caps such reads in total
per process, whatever the number of tenants.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from adapters.postgres.database import DatabaseUrl

# Takes the first free key of the list, or none. Without ORDER BY the executor stops at the
# first row whose lock it got, so no other key of the list is locked.
_TAKE = (
    "SELECT (SELECT k FROM unnest(%s::bigint[]) AS k WHERE pg_try_advisory_lock(k) LIMIT 1),"
    " (SELECT k FROM unnest(%s::bigint[]) AS k WHERE pg_try_advisory_lock(k) LIMIT 1)"
)


def slot_keys(scope: str, holder: str, slots: int) -> list[int]:
    """The advisory-lock keys of a holder's slots: 64-bit hashes, apart from other lock users
    (which use the two-key form or small constants)."""
    return [
        int.from_bytes(
            hashlib.blake2b(f"teaim-slot:{scope}:{holder}:{n}".encode(), digest_size=8).digest(),
            "big",
            signed=True,
        )
        for n in range(slots)
    ]


@dataclass(frozen=True, slots=True)
class Refused:
    """No slot was free: which scope was full ("principal", "org" or "process")."""

    scope: str


class SlotLease:
    """Slots taken for one read; `release()` gives them back (idempotent)."""

    def __init__(
        self, pool: ConnectionPool[psycopg.Connection[Any]], conn: psycopg.Connection[Any]
    ) -> None:
        self._pool = pool
        self._conn: psycopg.Connection[Any] | None = conn

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.execute("SELECT pg_advisory_unlock_all()")
        finally:
            self._pool.putconn(conn)


class ReadSlots:
    """At most `per_principal` concurrent reads per principal and `per_org` per org (across
    every process on the database), and at most `total` per process."""

    def __init__(self, url: DatabaseUrl, *, per_principal: int, per_org: int, total: int) -> None:
        self.per_principal, self.per_org, self.total = per_principal, per_org, total
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            url.libpq(),
            min_size=0,
            max_size=total,
            kwargs={"autocommit": True, "prepare_threshold": 0},
            open=True,
            name="read-slots",
        )

    def take(self, org_id: str, principal: str) -> SlotLease | Refused:
        """Take a principal slot and an org slot, or neither."""
        try:
            conn = self._pool.getconn(timeout=0.5)
        except PoolTimeout:
            return Refused("process")
        try:
            mine = slot_keys("principal", f"{org_id}/{principal}", self.per_principal)
            ours = slot_keys("org", org_id, self.per_org)
            row = conn.execute(_TAKE, (mine, ours)).fetchone()
            assert row is not None
            if row[0] is None or row[1] is None:
                conn.execute("SELECT pg_advisory_unlock_all()")
                self._pool.putconn(conn)
                return Refused("principal" if row[0] is None else "org")
        except BaseException:
            self._pool.putconn(conn)
            raise
        return SlotLease(self._pool, conn)

    def close(self) -> None:
        self._pool.close()
