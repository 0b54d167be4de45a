"""Read-your-writes: a query may name the position of a command it must see."""
# `_min_position` is async although it does no I/O: a plain `def` dependency costs a hop
# through the thread pool on every query.

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Query, Request

from interfaces.http.models.storable import MAX_STORABLE_INT
from interfaces.http.problems import ProblemError
from interfaces.runtime import Runtime

# ASCII digits, bigint-sized: str.isdigit() also accepts '²', which int() refuses.
_POSITION = re.compile(r"^[0-9]{1,18}$")


MIN_POSITION_DOC = "Wait until the read model has applied this event position."


async def _min_position(
    request: Request,
    min_position: Annotated[
        int | None, Query(ge=0, le=MAX_STORABLE_INT, description=MIN_POSITION_DOC)
    ] = None,
) -> int | None:
    return min_position_of(request, min_position)


def min_position_of(request: Request, min_position: int | None) -> int | None:
    """The position to wait for: the query's, or the X-Min-Position header's if later."""
    header = request.headers.get("x-min-position")
    if header is None:
        return min_position
    if not _POSITION.fullmatch(header):
        raise ProblemError(
            422, "validation", "Invalid X-Min-Position", "X-Min-Position must be a position"
        )
    return max(int(header), min_position or 0)


MinPositionDep = Annotated[int | None, Depends(_min_position)]


def await_read_models(runtime: Runtime, names: tuple[str, ...], position: int | None) -> None:
    """Block (bounded) until the named projections reached `position`, else 503."""
    if position is None or position == 0:
        return
    timeout = runtime.settings.read_wait_seconds
    if not runtime.read_db.wait_for(names, position, timeout=timeout):
        raise ProblemError(
            503,
            "read-model-lagging",
            "Read model not caught up",
            f"the read model did not reach position {position} within {timeout:g}s; retry",
        )
