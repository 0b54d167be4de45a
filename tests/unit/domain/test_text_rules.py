"""Names and free text refuse control characters (a NUL would poison every read model)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import InvalidValueError
from domain.project import validate_name
from domain.signoff import validate_signer_name
from domain.stage import validate_reason
from domain.text import check_line, check_text


@pytest.mark.parametrize("bad", ["a\x00b", "a\x1bb", "a\x7fb", "a\x85b", "a\ud800b", "\udfff"])
def test_names_and_texts_refuse_control_characters(bad: str) -> None:
    with pytest.raises(InvalidValueError, match="name must not contain control characters"):
        validate_name(bad)
    with pytest.raises(InvalidValueError, match="signer name must not contain control characters"):
        validate_signer_name(bad)
    with pytest.raises(InvalidValueError, match="reason must not contain control characters"):
        validate_reason(bad, required=True)


def test_free_text_keeps_tabs_and_line_breaks_but_names_do_not() -> None:
    assert check_text("line one\n\tline two\r\n", what="t") == "line one\n\tline two\r\n"
    with pytest.raises(InvalidValueError, match="name must not contain control characters"):
        check_line("line one\nline two", what="name")


@given(st.text())
def test_accepted_text_never_holds_a_nul(value: str) -> None:
    try:
        check_text(value, what="t")
    except InvalidValueError:
        assert any(ord(c) < 32 or 127 <= ord(c) <= 159 or 0xD800 <= ord(c) <= 0xDFFF for c in value)
    else:
        assert "\x00" not in value
        value.encode("utf-8")  # storable: no lone surrogate
