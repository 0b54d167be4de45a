"""When the read side cannot serve in time: a full pool, a statement past its timeout, a lost
connection. One exception for all three, which the HTTP layer answers as a 503 with Retry-After.

Read connections carry a statement timeout and a request waits a bounded time for one: one
tenant's slow queries then hold the shared pool for seconds, not for as long as they like, and
every other request is told to retry instead of waiting 30 seconds for a 500.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg_pool import PoolTimeout

# What a refused reader is told to wait before retrying (seconds): a pool frees within one
# statement timeout, a lost connection is replaced at the next request.
RETRY_AFTER_SECONDS = 2


class ReadUnavailableError(Exception):
    """The read side could not serve this request now (a 503: retry later)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = RETRY_AFTER_SECONDS


@contextmanager
def unavailable_on_overload() -> Iterator[None]:
    """Turn a pool wait that ran out, a cancelled statement or a lost connection into
    `ReadUnavailableError` (the cause kept for the logs); every other error passes as is."""
    try:
        yield
    except PoolTimeout as error:
        raise ReadUnavailableError("no read connection came free in time") from error
    except psycopg.errors.QueryCanceled as error:
        raise ReadUnavailableError("the query ran past its statement timeout") from error
    except psycopg.OperationalError as error:
        # A connection the server ended (restart, failover) or could not open: the pool
        # drops it when it comes back, and the next request gets a fresh one.
        raise ReadUnavailableError("the read database connection was lost") from error
