"""The log formatter never writes a configured secret or a credential-shaped string."""

from __future__ import annotations

import logging

import orjson
from hypothesis import given
from hypothesis import strategies as st

from interfaces.logs import REDACTED, JsonFormatter, Redactor, settings_secrets
from interfaces.settings import Settings

# Printable text without the brackets of the replacement marker (a secret like "d]" could be
# re-formed by "[redacted]" itself) and long enough to be looked for (see Redactor).
_CHARS = st.characters(min_codepoint=32, max_codepoint=0x2FF, exclude_characters="[]")
secrets = st.text(_CHARS, min_size=4, max_size=40).filter(lambda s: s not in REDACTED)
text = st.text(st.characters(min_codepoint=1, max_codepoint=0x2FF), max_size=60)


def _record(message: object, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("t", logging.WARNING, __file__, 1, message, args, exc_info)


@given(secret=secrets, before=text, after=text)
def test_a_configured_secret_never_reaches_a_json_line(
    secret: str, before: str, after: str
) -> None:
    formatter = JsonFormatter(Redactor([secret]))
    try:
        raise ValueError(f"{before}{secret}{after}")
    except ValueError as error:
        caught = error
    records = [
        _record("%s%s%s", before, secret, after),
        _record({"event": "x", "note": f"{before}{secret}{after}", "n": 1}),
        _record("failed", exc=caught),
    ]
    for record in records:
        line = formatter.format(record)
        assert secret not in line
        assert secret not in orjson.loads(line).get("note", "")
        assert isinstance(orjson.loads(line), dict), "scrubbing keeps the line valid JSON"


@given(
    credential=st.text(
        st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
        min_size=8,
        max_size=64,
    ),
    shape=st.sampled_from(
        [
            "Authorization: Bearer {c}",
            "postgresql://teaim:{c}@db.example:5432/teaim",
            "GET /api/x?a=1&token={c}&b=2",
            "host=db password={c} dbname=teaim",
            "link https://teaim.test/sign#token={c}",
            "jwt eyJhbGciOiJIUzI1NiJ9.eyJ{c}.{c}",
        ]
    ),
)
def test_credential_shapes_are_scrubbed_without_configuration(credential: str, shape: str) -> None:
    line = JsonFormatter(Redactor()).format(_record(shape.format(c=credential)))
    assert credential not in orjson.loads(line)["event"]
    assert REDACTED in line


def test_a_signing_link_token_is_scrubbed() -> None:
    token = "0123456789abcdef0123456789abcdef.QWxhZGRpbjpvcGVuIHNlc2FtZQ-_x"
    line = Redactor().text(f"used {token} once")
    assert line == f"used {REDACTED} once"


def test_fields_named_like_credentials_are_blanked_whatever_they_hold() -> None:
    line = JsonFormatter(Redactor()).format(
        _record({"event": "x", "Authorization": "Basic abc", "password": 12, "route": "/r"})
    )
    assert orjson.loads(line) | {"ts": None} == {
        "ts": None,
        "level": "warning",
        "logger": "t",
        "event": "x",
        "Authorization": REDACTED,
        "password": REDACTED,
        "route": "/r",
    }


def test_ordinary_lines_are_left_alone() -> None:
    message = "projection audit stopped at 42: KeyError 'x' (see teaim projections resume)"
    assert Redactor(["s3cret-value"]).text(message) == message


def test_settings_secrets_include_database_passwords_raw_and_url_encoded() -> None:
    settings = Settings(
        _env_file=None,
        database_url="postgresql://teaim:p%40ss%2Fw0rd@db:5432/teaim",
        jwt_secret="jwt-secret-value-long-enough-for-hs256",
    )
    found = settings_secrets(settings)
    assert {"p@ss/w0rd", "p%40ss%2Fw0rd", "jwt-secret-value-long-enough-for-hs256"} <= set(found)
