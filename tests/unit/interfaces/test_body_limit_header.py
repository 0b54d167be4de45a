"""The body limit's reading of Content-Length: any string a server lets through is answered
(refused or within the limit), never an exception."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from interfaces.http.body_limit import _within

LIMIT = 1024


@given(st.text(max_size=30))
def test_any_declared_length_is_decided_without_raising(declared: str) -> None:
    decided = _within(declared, LIMIT)
    # Within: 1-18 ASCII digits (no real body needs more) whose value is at most the limit.
    canonical = 0 < len(declared) <= 18 and declared.isascii() and declared.isdigit()
    assert decided == (canonical and int(declared) <= LIMIT)


@given(st.integers(0, 10**30))
def test_digit_strings_are_within_exactly_up_to_the_limit(length: int) -> None:
    assert _within(str(length), LIMIT) == (length <= LIMIT)


def test_unicode_digits_and_endless_digits_are_refused() -> None:
    assert not _within("²", LIMIT)
    assert not _within("1" * 5000, LIMIT)  # int() of this would raise, not refuse
    assert not _within("", LIMIT)
