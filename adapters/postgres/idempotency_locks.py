"""Which idempotency keys a live process is running: session advisory locks on one connection.

A reservation row alone cannot tell a request that is still running from one whose process
died: a timeout guesses, and re-runs a slow command that may still commit. A session advisory
lock held for as long as this process runs the key answers it exactly: PostgreSQL drops the
lock the moment the holding session ends, and a session ends with its process.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from uuid import UUID

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)

# The first half of the two-integer advisory lock key: keeps these locks apart from any other
# advisory lock user of the database. The second half is a hash of (org, principal, key): a
# collision only makes a retry wait (409 in progress) while the other key runs.
LOCK_CLASS = 0x1DE3_7017


def lock_id(org_id: UUID, principal: str, key: str) -> int:
    """The advisory lock (second half) of one key of one principal in one org."""
    digest = hashlib.sha256(f"{org_id}\x00{principal}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:4], "big", signed=True)


class KeyLocks:
    """Advisory locks on one dedicated session, shared by every request of this process."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._mutex = threading.Lock()
        self._conn: Connection | None = None
        # A session takes its own advisory lock again (they stack), so two requests of this
        # process with the same key are told apart here.
        self._held: set[int] = set()

    def try_hold(self, lock: int) -> bool:
        """Take the lock unless a request of any live process holds it."""
        with self._mutex:
            if lock in self._held:
                return False
            got = self._execute("SELECT pg_try_advisory_lock(:c, :o)", lock)
            if got:
                self._held.add(lock)
            return bool(got)

    def let_go(self, lock: int) -> None:
        """Give the lock back (the key's outcome is recorded, or left for a retry to settle)."""
        with self._mutex:
            if lock not in self._held:
                return
            self._held.discard(lock)
            try:
                self._execute("SELECT pg_advisory_unlock(:c, :o)", lock, retry=False)
            except DBAPIError:
                # The session is gone, and its locks with it.
                self._drop()

    def close(self) -> None:
        """Return the session (every lock it holds goes with it)."""
        with self._mutex:
            self._held.clear()
            self._drop()

    def _execute(self, sql: str, lock: int, *, retry: bool = True) -> object:
        for attempt in (1, 2):
            conn = self._connection()
            try:
                return conn.execute(text(sql), {"c": LOCK_CLASS, "o": lock}).scalar()
            except DBAPIError:
                self._drop()
                if not retry or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _connection(self) -> Connection:
        if self._conn is None:
            conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            for lock in sorted(self._held):
                # The old session died with its locks while requests of ours still run: take
                # them again. One another process took meanwhile is now that process's run.
                got = conn.execute(
                    text("SELECT pg_try_advisory_lock(:c, :o)"), {"c": LOCK_CLASS, "o": lock}
                ).scalar()
                if not got:
                    log.warning("idempotency lock %d was taken while its session was lost", lock)
            self._conn = conn
        return self._conn

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.invalidate()
                conn.close()
            except DBAPIError:
                pass
