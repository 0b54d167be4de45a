"""The projection store's backstop: a NUL in any value is written as U+FFFD, nothing else moves."""

from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from adapters.postgres.projection_store import _dumps

_TEXT = st.text(alphabet=st.sampled_from(["\x00", "\\", "u", "0", "a", '"']), max_size=40)


@given(st.lists(_TEXT, max_size=5))
def test_only_nul_characters_change(values: list[str]) -> None:
    rows = [{"text": value, "nested": {"items": [value]}} for value in values]
    written = orjson.loads(_dumps(rows))
    expected = [
        {"text": v.replace("\x00", "\ufffd"), "nested": {"items": [v.replace("\x00", "\ufffd")]}}
        for v in values
    ]
    assert written == expected
    assert b"\\u0000" not in _dumps(rows) or any("\\u0000" in v for v in values)
