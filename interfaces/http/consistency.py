"""Read-your-writes: a query may name the position of a command it must see.

The wait is a dependency of the route, awaited on the event loop through the process's one
log listener (no connection and no thread per wait), so a slow read model parks requests,
never the thread pool that every other request needs. A position no event has yet is a 422
at once (waiting could not help); beyond `READ_WAIT_MAX` parked waits a 503 says retry.
"""
# The dependencies are async although some do no I/O: a plain `def` dependency costs a hop
# through the thread pool on every query.

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Query, Request
from starlette.concurrency import run_in_threadpool

from adapters.postgres.log_listener import (
    ListenerUnavailableError,
    LogListener,
    TooManyWaitsError,
)
from interfaces.http.deps import ReaderDep
from interfaces.http.models.storable import MAX_STORABLE_INT
from interfaces.http.problems import ProblemError
from interfaces.runtime import Runtime

# ASCII digits, bigint-sized: str.isdigit() also accepts '²', which int() refuses.
_POSITION = re.compile(r"^[0-9]{1,18}$")
# Seconds a client is told to wait before retrying when too many waits are parked.
_RETRY_AFTER = "1"

MIN_POSITION_DOC = "Wait until the read model has applied this event position."

MinPositionQuery = Annotated[
    int | None, Query(ge=0, le=MAX_STORABLE_INT, description=MIN_POSITION_DOC)
]


def min_position_of(request: Request, min_position: int | None) -> int | None:
    """The position to wait for: the query's, or the X-Min-Position header's if later."""
    header = request.headers.get("x-min-position")
    if header is None:
        return min_position
    if not _POSITION.fullmatch(header) or int(header) > MAX_STORABLE_INT:
        raise ProblemError(
            422, "validation", "Invalid X-Min-Position", "X-Min-Position must be a position"
        )
    return max(int(header), min_position or 0)


def caught_up(names: tuple[str, ...]) -> Callable[..., Awaitable[int | None]]:
    """A dependency: the request's position, once these read models applied it (else 503).

    It authenticates first (the route's reader, computed once): a 401 never waits. A read
    model halted for the reader's org answers 503 before any wait (the check is cached for a
    second per process, and runs in a thread: it may wait for the read pool).
    """

    async def _caught_up(
        request: Request, reader: ReaderDep, min_position: MinPositionQuery = None
    ) -> int | None:
        position = min_position_of(request, min_position)
        # In a thread: when its cache has expired the check waits for a connection of the
        # shared read pool, which slow queries may hold; on the loop that wait would stall
        # every request of the process, whatever its tenant.
        # Most requests find the answer cached and skip the hop.
        if not reader.refused_if_halted_from_cache(names):
            await run_in_threadpool(reader.refuse_if_halted, names)
        await await_read_models(request, names, position)
        return position

    return _caught_up


async def await_read_models(request: Request, names: tuple[str, ...], position: int | None) -> None:
    """Wait (bounded, async) until the named read models applied `position`."""
    if position is None or position == 0:
        return
    runtime: Runtime = request.app.state.runtime
    timeout = runtime.settings.read_wait_seconds
    listener: LogListener | None = getattr(request.app.state, "log_listener", None)
    try:
        if listener is None:
            raise ListenerUnavailableError("the app is served without its lifespan")
        if await listener.beyond_head(position):
            raise ProblemError(
                422,
                "position-beyond-log",
                "Position beyond the log",
                f"no event has position {position} yet: name a position a command returned",
            )
        reached = await listener.wait_for(names, position, timeout)
    except TooManyWaitsError:
        raise ProblemError(
            503,
            "too-many-waits",
            "Too many waits",
            "this server holds as many read-your-writes waits as it allows; retry",
            headers={"Retry-After": _RETRY_AFTER},
        ) from None
    except ListenerUnavailableError:
        raise ProblemError(
            503,
            "read-model-lagging",
            "Read model not caught up",
            "cannot follow the read models' progress right now; retry",
            headers={"Retry-After": _RETRY_AFTER},
        ) from None
    if not reached:
        raise ProblemError(
            503,
            "read-model-lagging",
            "Read model not caught up",
            f"the read model did not reach position {position} within {timeout:g}s; retry",
        )
