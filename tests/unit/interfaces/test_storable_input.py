"""Every request body an input model accepts can be written to the log: one check on `In`."""

from __future__ import annotations

import json
from typing import Any

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from interfaces.http.models import In
from interfaces.http.models.storable import MAX_STORABLE_INT, UnstorableInputError, check_storable


class Free(In):
    """An input model with fields no per-field constraint guards (a future model's mistake)."""

    text: str = ""
    counts: dict[str, int] = {}
    items: list[Any] = []


@pytest.mark.parametrize(
    "body",
    [
        {"text": "\ud800"},
        {"text": "ok\udfffok"},
        {"counts": {"\udbff": 1}},
        {"counts": {"n": MAX_STORABLE_INT + 1}},
        {"counts": {"n": -MAX_STORABLE_INT - 1}},
        {"items": [[{"deep": 2**63}]]},
    ],
)
def test_an_input_model_refuses_what_the_log_cannot_hold(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match=r"lone surrogates|2\^53"):
        Free.model_validate(body)


def test_an_input_model_keeps_what_the_log_can_hold() -> None:
    body = {"text": "Zoë 👍", "counts": {"n": MAX_STORABLE_INT}, "items": [-MAX_STORABLE_INT]}
    assert Free.model_validate(body).model_dump() == body


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text()
    | st.sampled_from(["\ud800", 2**53, -(2**53)]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=16,
)


@given(json_values)
def test_the_check_passes_exactly_what_canonical_json_can_hold(value: Any) -> None:
    # The log hashes each event over its RFC 8785 form, written as UTF-8.
    try:
        rfc8785.dumps(value)
        json.dumps(value, ensure_ascii=False).encode("utf-8")
        storable = True
    except (rfc8785.CanonicalizationError, UnicodeEncodeError):
        storable = False
    try:
        check_storable(value)
        accepted = True
    except UnstorableInputError:
        accepted = False
    assert accepted == storable
