"""Range and conditional headers, against a model of RFC 9110 for single ranges."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from interfaces.http.byte_ranges import (
    RangeNotSatisfiableError,
    attachment,
    etag_matches,
    wanted_range,
)


@given(st.integers(0, 10_000), st.integers(0, 20_000), st.none() | st.integers(0, 20_000))
def test_a_first_last_range_is_cut_to_the_file(size: int, first: int, last: int | None) -> None:
    header = f"bytes={first}-{'' if last is None else last}"
    if last is not None and last < first:
        assert wanted_range(header, size) is None
    elif first >= size:
        with pytest.raises(RangeNotSatisfiableError):
            wanted_range(header, size)
    else:
        end = size - 1 if last is None else min(last, size - 1)
        assert wanted_range(header, size) == (first, end)


@given(st.integers(0, 10_000), st.integers(0, 20_000))
def test_a_suffix_range_is_the_last_bytes(size: int, suffix: int) -> None:
    if suffix == 0 or size == 0:
        with pytest.raises(RangeNotSatisfiableError):
            wanted_range(f"bytes=-{suffix}", size)
    else:
        assert wanted_range(f"bytes=-{suffix}", size) == (max(0, size - suffix), size - 1)


@pytest.mark.parametrize(
    "header", [None, "", "bytes=", "bytes=-", "bytes=1-2,4-5", "items=1-2", "bytes=a-b"]
)
def test_other_headers_ask_for_everything(header: str | None) -> None:
    assert wanted_range(header, 100) is None


def test_etags_compare_weakly_in_lists() -> None:
    tag = '"abc"'
    assert etag_matches('"abc"', tag)
    assert etag_matches('W/"abc"', tag)
    assert etag_matches('"x", "abc"', tag)
    assert etag_matches("*", tag)
    assert not etag_matches('"abcd"', tag)
    assert not etag_matches(None, tag)


def test_the_attachment_header_quotes_nothing_it_should_not() -> None:
    header = attachment('a"b\\c\u00e9.txt')
    assert header == "attachment; filename=\"a_b_c_.txt\"; filename*=UTF-8''a%22b%5Cc%C3%A9.txt"
