"""Tenant-scoped access to the read models: every transaction names its org."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import DictRow, TupleRow, dict_row, tuple_row
from psycopg.sql import SQL, Composed
from psycopg_pool import ConnectionPool

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.projection_runner import PROGRESS_CHANNEL
from adapters.postgres.read_busy import unavailable_on_overload

# The setting row-level security policies read; set per transaction, never per session.
TENANT_SETTING = "app.org_id"
_SET_TENANT = "SELECT set_config('app.org_id', %s, true)"
# The role queries connect as (created by migration 0008_rls): it owns nothing, cannot bypass
# row-level security, and may only SELECT the read models.
READ_ROLE = "teaim_app"

# Whether the connected role escapes row-level security: a superuser or BYPASSRLS role does,
# and so does any member of a table's owner (the owner's policy lets it see every tenant).
_ESCAPES_RLS = """
SELECT r.rolsuper OR r.rolbypassrls OR EXISTS (
    SELECT 1 FROM pg_class AS c
    WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
      AND pg_has_role(current_user, c.relowner, 'MEMBER')
)
FROM pg_roles AS r WHERE r.rolname = current_user
"""


class ReadRoleError(Exception):
    """The read database's role is unusable, or could read every tenant's rows."""


class ReadDatabase:
    """A connection pool for queries; tenant set with SET LOCAL in every transaction."""

    def __init__(
        self,
        url: DatabaseUrl,
        *,
        min_size: int = 1,
        max_size: int = 10,
        require_rls: bool = False,
        statement_timeout_ms: int | None = None,
        pool_timeout: float = 30.0,
    ) -> None:
        # require_rls: refuse a role that row-level security does not hold (the service always
        # asks; tests of the projection engine may read as the owner).
        # statement_timeout_ms and pool_timeout bound what one tenant's slow queries can hold:
        # the server cancels a statement past the first, and a request waits at most the second
        # for a connection; either is a `ReadUnavailableError` (a 503), never a 500.
        if require_rls:
            _check_role(url)
        self.url = url
        self.statement_timeout_ms = statement_timeout_ms
        self.pool_timeout = pool_timeout
        self._pool: ConnectionPool[psycopg.Connection[DictRow]] = ConnectionPool(
            url.libpq(),
            min_size=min_size,
            max_size=max_size,
            # Autocommit: every transaction is an explicit block (`transaction()` sends BEGIN),
            # so `tenant_rows` can pipeline the block's statements in one round trip.
            kwargs={"row_factory": dict_row, "autocommit": True},
            connection_class=psycopg.Connection[DictRow],
            configure=statement_timeout(statement_timeout_ms),
            timeout=pool_timeout,
            open=True,
        )

    @contextmanager
    def tenant(self, org_id: UUID) -> Iterator[psycopg.Cursor[DictRow]]:
        """A cursor in a transaction scoped to one org (RLS sees only its rows)."""
        with (
            unavailable_on_overload(),
            self._pool.connection() as conn,
            conn.transaction(),
            conn.cursor() as cur,
        ):
            cur.execute("SELECT set_config(%s, %s, true)", (TENANT_SETTING, str(org_id)))
            yield cur

    def tenant_rows(
        self, org_id: UUID, query: str | SQL | Composed, params: Sequence[Any] | Mapping[str, Any]
    ) -> list[TupleRow]:
        """One statement's rows in a transaction scoped to one org, in one round trip.

        The hot read paths' shape of `tenant`: BEGIN, the tenant setting (SET LOCAL, as in
        `tenant`), the statement (prepared) and COMMIT go out as one pipeline, so RLS holds
        exactly as strongly while the server is asked once instead of four times.
        """
        with unavailable_on_overload(), self._pool.connection() as conn:
            cur = conn.cursor(row_factory=tuple_row)
            with conn.pipeline():
                conn.execute("BEGIN")
                cur.execute(_SET_TENANT, (str(org_id),), prepare=True)
                cur.execute(query, params, prepare=True)
                conn.execute("COMMIT")
            return cur.fetchall()

    @contextmanager
    def system(self) -> Iterator[psycopg.Cursor[DictRow]]:
        """A cursor with no tenant: for tables that hold no tenant data (tracking, health)."""
        with (
            unavailable_on_overload(),
            self._pool.connection() as conn,
            conn.transaction(),
            conn.cursor() as cur,
        ):
            yield cur

    def projection_position(self, name: str) -> int:
        """Where a projection has got to (0 when it never ran)."""
        with self.system() as cur:
            cur.execute("SELECT position FROM projection_tracking WHERE name = %s", (name,))
            row = cur.fetchone()
        return 0 if row is None else int(row["position"])

    def wait_for(self, names: tuple[str, ...], position: int, *, timeout: float) -> bool:
        """Block until every named projection reached `position` (read-your-writes).

        Wakes on the runners' NOTIFY rather than polling; False when `timeout` ran out.
        """
        deadline = time.monotonic() + timeout
        if all(self.projection_position(n) >= position for n in names):
            return True
        with psycopg.connect(self.url.libpq(), autocommit=True) as listener:
            listener.execute(f"LISTEN {PROGRESS_CHANNEL}")
            # Re-check after LISTEN: progress made in between would otherwise be missed.
            while not all(self.projection_position(n) >= position for n in names):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                for _ in listener.notifies(timeout=min(remaining, 1.0), stop_after=1):
                    pass
        return True

    def pool_stats(self) -> dict[str, int]:
        """The pool's figures (psycopg_pool's get_stats: pool_size, pool_available...)."""
        return self._pool.get_stats()

    def close(self) -> None:
        """Close the pool."""
        self._pool.close()


def statement_timeout(
    milliseconds: int | None,
) -> Callable[[psycopg.Connection[Any]], None] | None:
    """A pool's `configure` step setting the session's statement timeout (None: none).

    Set per session rather than in the connection's `options`, which would replace any
    `options` the database URL carries; the pools never reset sessions, so it holds.
    """
    if milliseconds is None:
        return None

    def configure(conn: psycopg.Connection[Any]) -> None:
        # Pooled connections are in autocommit mode: the setting is the session's.
        conn.execute("SELECT set_config('statement_timeout', %s, false)", (f"{milliseconds}ms",))

    return configure


def _check_role(url: DatabaseUrl) -> None:
    try:
        with psycopg.connect(url.libpq(), autocommit=True) as conn:
            row = conn.execute(_ESCAPES_RLS).fetchone()
    except psycopg.OperationalError as error:
        msg = (
            f"queries cannot connect as {url.user!r} to {url.redacted()}: {error}"
            " (migrate the database, then set READ_DATABASE_PASSWORD or READ_DATABASE_URL)"
        )
        raise ReadRoleError(msg) from None
    if row is None or row[0]:
        msg = (
            f"role {url.user!r} bypasses row-level security (superuser, BYPASSRLS or a table"
            f" owner): queries must connect as {READ_ROLE!r} or a role like it"
        )
        raise ReadRoleError(msg)
