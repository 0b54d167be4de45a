"""Rules every piece of human text in the domain obeys."""

from __future__ import annotations

import re

from domain.errors import InvalidValueError

# C0/C1 control characters (NUL included: PostgreSQL cannot store it, so one would poison
# every read model), and lone surrogates (not text at all: no UTF-8 encoding exists, so the
# event store cannot write one). Free text keeps tab and newlines; one-line names keep nothing.
_CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_CONTROL_IN_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def check_line(value: str, *, what: str) -> str:
    """A one-line text (a name, a title): no control characters at all."""
    if _CONTROL_IN_LINE.search(value):
        raise InvalidValueError(f"{what} must not contain control characters")
    return value


def check_text(value: str, *, what: str) -> str:
    """Free text (a description, a comment): tabs and line breaks only."""
    if _CONTROL_IN_TEXT.search(value):
        raise InvalidValueError(f"{what} must not contain control characters")
    return value
