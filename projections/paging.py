"""Pages of a read model, and the one cursor format every paginated query speaks.

A cursor is the sort key of the last row a page returned, named by its sort order, as
urlsafe base64 (no padding) of compact JSON `{"s": order, "k": [values]}`. It is opaque to
clients but it is client input: a cursor is accepted only if it is exactly one a query could
have issued (bounded length, strict base64, the same order, a key of the right arity, and the
canonical encoding of what it decodes to). Typing the key values back into a comparison is the
query's business; the format, the bounds and the refusal are here, once.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import orjson

# Every cursor a query issues fits well inside this (text keys are capped far below it).
MAX_CURSOR_LENGTH = 1024
# Log positions are bigints.
MAX_POSITION = 2**63 - 1
POSITION_ORDER = "position"
DEFAULT_LIMIT = 50
MAX_LIMIT = 200

JsonScalar = str | int | float | bool | None
T = TypeVar("T")


class InvalidCursorError(ValueError):
    """A cursor no query issued: malformed, altered, too long, or from another sort order."""


@dataclass(frozen=True, slots=True)
class PageRequest:
    """Where a page starts (an opaque cursor, None for the first page) and its length."""

    limit: int = DEFAULT_LIMIT
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of records, and the cursor of the next page (None after the last)."""

    items: list[T]
    next_cursor: str | None


def encode_cursor(order: str, key: Sequence[JsonScalar]) -> str:
    """The opaque cursor continuing after a row whose sort key in `order` is `key`."""
    raw = orjson.dumps({"s": order, "k": list(key)})
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(order: str, cursor: str, size: int) -> list[JsonScalar]:
    """The key of a cursor `order` issued (`size` values); InvalidCursorError otherwise."""
    if not cursor or len(cursor) > MAX_CURSOR_LENGTH or not cursor.isascii():
        raise InvalidCursorError("cursor is empty, too long or not ASCII")
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        data = orjson.loads(raw)
    except (binascii.Error, ValueError) as error:
        raise InvalidCursorError("cursor is not one this list issued") from error
    if not isinstance(data, dict) or set(data) != {"s", "k"}:
        raise InvalidCursorError("cursor is not one this list issued")
    if data["s"] != order:
        raise InvalidCursorError(f"cursor does not belong to the {order!r} order")
    key = data["k"]
    if not isinstance(key, list) or len(key) != size:
        raise InvalidCursorError("cursor is not one this list issued")
    if any(isinstance(value, dict | list) for value in key) or encode_cursor(order, key) != cursor:
        # Only the canonical spelling is one we issued (no padding, no re-ordered JSON...).
        raise InvalidCursorError("cursor is not one this list issued")
    return key


def encode_position(position: int) -> str:
    """The cursor of a list ordered by log position, continuing after `position`."""
    return encode_cursor(POSITION_ORDER, [position])


def decode_position(cursor: str) -> int:
    """The log position a position cursor carries; InvalidCursorError unless we issued it."""
    (position,) = decode_cursor(POSITION_ORDER, cursor, 1)
    if isinstance(position, bool) or not isinstance(position, int):
        raise InvalidCursorError("cursor is not one this list issued")
    if not 0 < position <= MAX_POSITION:
        raise InvalidCursorError("cursor is not one this list issued")
    return position
