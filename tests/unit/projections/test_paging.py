"""The one cursor format: round trips, and refusal of anything no query issued."""

from __future__ import annotations

import base64

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.paging import (
    MAX_CURSOR_LENGTH,
    InvalidCursorError,
    decode_cursor,
    decode_position,
    encode_cursor,
    encode_position,
)

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.text(st.characters(codec="utf-8"), max_size=40),
)
KEYS = st.lists(SCALARS, min_size=1, max_size=4)
ORDERS = st.sampled_from(["newest", "oldest", "name", "position"])


@given(ORDERS, KEYS)
def test_a_cursor_decodes_to_the_key_it_encodes(order: str, key: list[object]) -> None:
    cursor = encode_cursor(order, key)  # type: ignore[arg-type]
    assert decode_cursor(order, cursor, len(key)) == key
    assert cursor.isascii()
    assert "=" not in cursor


@given(ORDERS, ORDERS, KEYS)
def test_a_cursor_of_one_order_is_refused_by_another(
    issued_by: str, read_by: str, key: list[object]
) -> None:
    cursor = encode_cursor(issued_by, key)  # type: ignore[arg-type]
    if issued_by == read_by:
        return
    with pytest.raises(InvalidCursorError, match="order"):
        decode_cursor(read_by, cursor, len(key))


@given(st.text(max_size=80))
def test_text_is_accepted_only_if_it_is_the_canonical_cursor_of_what_it_decodes_to(
    text: str,
) -> None:
    try:
        key = decode_cursor("newest", text, 2)
    except InvalidCursorError:
        return
    assert encode_cursor("newest", key) == text


def _raw(payload: bytes, *, pad: bool = False) -> str:
    encoded = base64.urlsafe_b64encode(payload).decode()
    return encoded if pad else encoded.rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "!!",
        _raw(b'{"s": "newest", "k": [1, 2]}'),  # not the compact spelling
        _raw(b'{"k":[1,2],"s":"newest"}'),  # keys reordered
        _raw(orjson.dumps({"s": "newest", "k": [1, 2]}), pad=True) + "=",  # padded
        _raw(orjson.dumps({"s": "newest", "k": [1]})),  # wrong arity
        _raw(orjson.dumps({"s": "newest", "k": [[1], 2]})),  # nested value
        _raw(orjson.dumps({"s": "newest", "k": [1, 2], "x": 0})),  # extra field
        _raw(orjson.dumps(["newest", [1, 2]])),  # not an object
        "A" * (MAX_CURSOR_LENGTH + 1),
    ],
)
def test_malformed_cursors_are_refused(cursor: str) -> None:
    with pytest.raises(InvalidCursorError, match="cursor is"):
        decode_cursor("newest", cursor, 2)


@given(st.integers(min_value=1, max_value=2**63 - 1))
def test_a_position_cursor_round_trips(position: int) -> None:
    assert decode_position(encode_position(position)) == position


@pytest.mark.parametrize("position", [0, -1, 2**63, True])
def test_positions_out_of_range_are_refused(position: int) -> None:
    with pytest.raises(InvalidCursorError, match="issued"):
        decode_position(encode_cursor("position", [position]))
