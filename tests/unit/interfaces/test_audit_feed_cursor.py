"""Audit feed cursors and action filters, without a database."""

from __future__ import annotations

import base64
import binascii
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from interfaces.http.problems import ProblemError
from interfaces.http.routes.audit import decode_cursor, encode_cursor
from projections.audit_view import AuditFilters as AuditQuery

POSITIONS = st.integers(min_value=1, max_value=2**63 - 1)


@given(POSITIONS)
def test_a_cursor_decodes_to_the_position_it_encodes(position: int) -> None:
    cursor = encode_cursor(position)
    assert decode_cursor(cursor) == position
    assert cursor.isascii()
    assert "=" not in cursor


@given(st.text(max_size=64))
def test_text_is_accepted_only_as_a_cursor_we_could_have_issued(text: str) -> None:
    issued = _issued(text)
    if issued is not None:
        assert decode_cursor(text) == issued
        return
    with pytest.raises(ProblemError, match="the cursor is malformed") as refused:
        decode_cursor(text)
    assert (refused.value.status, refused.value.slug) == (422, "validation")


def _issued(text: str) -> int | None:
    """The position `text` encodes if we could have issued it (worked out independently).

    A feed cursor is unpadded urlsafe base64 of `{"s":"position","k":[position]}`.
    """
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError):
        return None
    if not isinstance(data, dict) or data.get("s") != "position":
        return None
    key = data.get("k")
    if not (isinstance(key, list) and len(key) == 1 and type(key[0]) is int):
        return None
    position = key[0]
    if 0 < position < 2**63 and encode_cursor(position) == text:
        return position
    return None


def test_no_cursor_is_the_first_page() -> None:
    assert decode_cursor(None) is None


@pytest.mark.parametrize(
    ("action", "prefix"),
    [
        (None, None),
        ("stage.signed_off", None),
        ("stage", None),
        ("stage.", "stage."),
        ("stage.*", "stage."),
        ("stage.sign*", "stage.sign"),
        ("*", ""),
    ],
)
def test_an_action_is_a_prefix_only_when_it_ends_in_a_dot_or_a_star(
    action: str | None, prefix: str | None
) -> None:
    assert AuditQuery(action=action).action_prefix() == prefix
