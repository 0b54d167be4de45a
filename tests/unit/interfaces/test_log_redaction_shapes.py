"""Credential shapes the first redaction missed: nested fields, any auth scheme, `name: value`,
quoted values with spaces, signing tokens in upper case or percent-encoded."""

from __future__ import annotations

import logging
from urllib.parse import quote

import orjson
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from interfaces.logs import (
    MAX_FIELD_DEPTH,
    REDACTED,
    ConsoleFormatter,
    JsonFormatter,
    Redactor,
)

SECRET = "s3cr3t-Value_42"


def _record(message: object) -> logging.LogRecord:
    return logging.LogRecord("t", logging.WARNING, __file__, 1, message, (), None)


def _json(message: object) -> str:
    return JsonFormatter(Redactor()).format(_record(message))


def _console(message: object) -> str:
    return ConsoleFormatter(Redactor()).format(_record(message))


def test_a_secret_named_key_inside_nested_fields_is_blanked() -> None:
    line = _json(
        {
            "event": "outbound call",
            "request": {"headers": {"Authorization": SECRET, "accept": "json"}},
            "attempts": [{"x-service-token": SECRET}, {"db_password": SECRET, "n": 1}],
        }
    )
    document = orjson.loads(line)
    assert SECRET not in line
    assert document["request"] == {"headers": {"Authorization": REDACTED, "accept": "json"}}
    assert document["attempts"] == [
        {"x-service-token": REDACTED},
        {"db_password": REDACTED, "n": 1},
    ]


def test_fields_nested_deeper_than_the_walk_are_replaced_whole() -> None:
    deep: dict[str, object] = {"authorization": SECRET}
    for _ in range(MAX_FIELD_DEPTH + 2):
        deep = {"inner": deep}
    line = _json({"event": "x", "deep": deep})
    assert SECRET not in line
    assert REDACTED in line


def test_flat_fields_without_credential_names_are_returned_as_they_are() -> None:
    fields = {"event": "request", "route": "/api/projects", "status": 200}
    assert Redactor().fields(fields) is fields


@pytest.mark.parametrize(
    ("shape", "kept"),
    [
        ("Authorization: Basic {c}", "Authorization: "),
        ("authorization=Digest {c}", "authorization="),
        ("Proxy-Authorization: Negotiate {c}", "Proxy-Authorization: "),
        ("X-Service-Token: {c}", "X-Service-Token: "),
        ("x-api-key: {c}", "x-api-key: "),
        ("Cookie: session={c}; theme=dark", "Cookie: "),
        ("password: {c}", "password: "),
        ('{{"password": "{c}"}}', '"password": '),
        ("password='{c} and more'", "password="),
        ("password={c};tail", "password="),
    ],
)
def test_header_and_pair_shapes_lose_their_value_but_keep_their_name(shape: str, kept: str) -> None:
    message = shape.format(c=SECRET)
    json_line = _json(message)
    event = orjson.loads(json_line)["event"]
    assert SECRET not in json_line
    assert kept + REDACTED in event
    console_line = _console(message)
    assert SECRET not in console_line
    assert kept + REDACTED in console_line


def test_a_quoted_value_goes_whole_spaces_and_separators_included() -> None:
    for message in ("password='ab cd' next", 'password="ab cd" next', "password=ab;cd next"):
        event = orjson.loads(_json(message))["event"]
        assert event == f"password={REDACTED} next", message
        assert "cd" not in _console(message)


def test_a_signing_token_in_upper_case_or_percent_encoded_is_scrubbed() -> None:
    token = "0123456789abcdef0123456789abcdef.QWxhZGRpbjpvcGVuIHNlc2FtZQ-_x"
    head, tail = token.split(".")
    for written in (
        token.upper(),
        f"{head.upper()}.{tail}",
        f"{head}%2E{tail}",
        f"{head}%2e{tail}",
        quote(token, safe=""),
        "".join(f"%{ord(c):02X}" for c in head) + "." + tail,
    ):
        assert Redactor().text(f"used {written} once") == f"used {REDACTED} once", written


# Shapes a credential is written in; {c} is the planted credential.
SHAPES = [
    "Authorization: Bearer {c}",
    "Authorization: Basic {c}",
    "authorization: Token {c}",
    "X-Service-Token: {c}",
    "X-Api-Key: {c}",
    "set-cookie: sid={c}; Path=/",
    "password: {c}",
    "PASSWORD={c}",
    "passwd = {c}",
    '{{"password": "{c}"}}',
    "{{'secret': '{c}'}}",
    "password='{c} {c}'",
    'password="{c} {c}"',
    "password={c};{c}",
    "client_secret={c}&next=1",
    "host=db password={c} dbname=teaim",
    "postgresql://teaim:{c}@db.example:5432/teaim",
]
_CREDENTIAL = st.text(
    st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."),
    min_size=8,
    max_size=48,
)
_AROUND = st.text(st.characters(min_codepoint=32, max_codepoint=0x7E), max_size=20).map(
    lambda s: s + " "
)


@given(credential=_CREDENTIAL, shape=st.sampled_from(SHAPES), before=_AROUND, after=_AROUND)
def test_a_planted_credential_never_survives(
    credential: str, shape: str, before: str, after: str
) -> None:
    assume(credential not in before + after)  # else the text around it would carry it
    planted = shape.format(c=credential)
    message = f"{before}{planted} {after}"
    for line in (
        _json(message),
        _json({"event": "x", "note": message}),
        _json({"event": "x", "call": {"headers": {"authorization": credential}}}),
        _console(message),
    ):
        assert credential not in line, (shape, line)
    assert isinstance(orjson.loads(_json(message)), dict), "scrubbing keeps the line valid JSON"
