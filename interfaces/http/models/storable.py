"""What a request may carry into the event log: valid Unicode text and I-JSON-safe integers.

Events are stored as UTF-8 JSON and hashed over their RFC 8785 canonical form, which holds
integers of magnitude 2^53 - 1 at most (I-JSON, RFC 7493). JSON itself allows more: a lone
surrogate escape ("\\ud800") and any integer. Both passed the per-field validation and then
failed inside the store (a 500), so every input model checks its whole raw input here once
(`In`), and every integer parameter is bounded by `MAX_STORABLE_INT`.
"""

from __future__ import annotations

from typing import Any

from application.transcodings import MAX_STORABLE_INT

__all__ = ["MAX_STORABLE_INT", "UnstorableInputError", "check_storable"]

_MAX_DEPTH = 64


class UnstorableInputError(ValueError):
    """A value no event can hold (pydantic reports a ValueError as a validation error)."""


def check_storable(value: Any, where: str = "body", depth: int = 0) -> None:
    """Refuse text that is not encodable as UTF-8, and integers the log cannot hold.

    Dict keys are checked too. Depth is bounded (the JSON parser bounds it already; this
    walk must not be the thing that recurses without end).
    """
    if depth > _MAX_DEPTH:
        raise UnstorableInputError(f"{where}: nested too deeply")
    if isinstance(value, str):
        if not _encodable(value):
            raise UnstorableInputError(f"{where}: text must be valid Unicode (no lone surrogates)")
    elif isinstance(value, bool):
        return
    elif isinstance(value, int):
        if not -MAX_STORABLE_INT <= value <= MAX_STORABLE_INT:
            raise UnstorableInputError(
                f"{where}: integers must be within +/-{MAX_STORABLE_INT} (2^53 - 1)"
            )
    elif isinstance(value, dict):
        for key, item in value.items():
            check_storable(key, f"{where} key", depth + 1)
            check_storable(item, f"{where}.{key}" if _encodable(str(key)) else where, depth + 1)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            check_storable(item, f"{where}[{index}]", depth + 1)


def _encodable(text: str) -> bool:
    # Only lone surrogates (U+D800..U+DFFF) fail; ASCII text is the common fast case.
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
