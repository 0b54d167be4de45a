"""Process-wide logging: one JSON object per line (or key=value for people), secrets scrubbed.

Every record goes through one stdlib handler, whatever library emitted it (uvicorn, psycopg,
the projection runner, our request lines), so one redaction step covers them all. A record
emitted while a request is being served carries that request's id, org and role.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
import time
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import IO, Any, Literal
from urllib.parse import quote
from uuid import UUID

import orjson

from adapters.postgres.database import DatabaseUrl
from interfaces.settings import Settings

REDACTED = "[redacted]"
# Extra fields whose value is a credential, whatever it looks like.
SECRET_KEYS = frozenset(
    {
        "authorization",
        "x-signing-token",
        "x_signing_token",
        "signing_token",
        "token",
        "password",
        "passwd",
        "secret",
        "jwt_secret",
        "service_token",
        "metrics_token",
        "cookie",
        "set-cookie",
        "database_url",
        "read_database_url",
        "read_database_password",
        # Idempotency replays keep response bodies; they never belong in a log line.
        "body",
    }
)
# Any field or header whose name contains one of these holds a credential (x-service-token,
# db_password, set-cookie, ...): its value is blanked, at any depth of a nested field.
_SECRET_WORDS = (
    *("token", "secret", "passw", "authorization", "cookie"),
    *("api_key", "api-key", "apikey"),
)
# Nested fields are walked this deep; anything deeper is replaced whole (fail closed).
MAX_FIELD_DEPTH = 6
# Tuples, not unions: isinstance with a tuple is the faster test, and fields() runs per line.
_SEQUENCES = (list, tuple)
_CONTAINERS = (dict, list, tuple)
# Shapes of credentials that may sit inside free text (messages, exceptions, URLs). The
# `keep` group (the name of what was removed) stays: "password=[redacted]" says what went.
# Each pattern only runs when a cheap substring test says it could match: a request line is
# scrubbed on every request, and running all of them costs more than the rest of the line.
# A JSON line is scrubbed after rendering, where a quote inside a string is written \": no
# pattern matches a lone double quote there, and an escaped quoted value is removed with both
# of its escaped quotes, so scrubbing keeps the line valid JSON.
_BEARER = re.compile(r"(?P<keep>(?i:bearer)\s+)[^\s\"\\,;]+")
# A JWT (header.payload.signature, base64url; a JSON header always starts with {" -> eyJ).
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
# A signing link token: the sign-off id in hex, a dot, then random base64url; in either case
# and percent-encoded (a link pasted through a URL encoder writes the dot as %2E). The cheap
# test is the long base64url run after a plain dot, or any percent sign (rare in a log line).
_B64_CHAR = r"(?:[A-Za-z0-9_-]|%[0-9A-Fa-f]{2})"
_SIGNING_HINT = re.compile(r"\.[A-Za-z0-9_-]{16}")
_SIGNING = re.compile(r"(?:[0-9A-Fa-f]|%[0-9A-Fa-f]{2}){32}(?:\.|%2[Ee])" + _B64_CHAR + "{16,}")
# user:password@ in any URL (DATABASE_URL, proxies).
_URL_PASSWORD = re.compile(r"(?<=://)(?P<keep>[^\s\"\\/:@]*:)[^\s\"\\/@]+(?=@)")
# name=value and name: value pairs (query strings, libpq DSNs, headers, JSON and Python reprs).
# The name may be closed by a quote; a quoted value goes whole, spaces and all; a bare value
# runs to whitespace or & (a ; or , does not end a password).
_KEY_NAMES = ("passw", "token", "secret", "api_key", "api-key", "apikey")
_NAME = r"(?:passw(?:or)?d|token|secret|api[_-]?key)"
_JSON_QUOTED = r'\\"(?:[^"\\]|\\[^"])*(?:\\")?|\'(?:[^\'"\\]|\\[^"])*\'?'
_TEXT_QUOTED = r'"[^"\r\n]*"?|\'[^\'\r\n]*\'?'
_BARE = r'[^\s"\\&\']+'
_COOKIE = r'[^\s"\\;,]+(?:;[ ]?[^\s"\\;,]+)*'
# An authorization header's value is a scheme and a credential (Basic, Digest, ...): both go.
_SCHEME = r"(?:[A-Za-z][A-Za-z0-9_-]*[ ]+)?"


def _pairs(quoted: str, close: str) -> tuple[tuple[tuple[str, ...], re.Pattern[str]], ...]:
    """The name/value patterns, each with the lower-case words that must occur for it to run."""
    sep = r"(?:" + close + r"|')?\s*[:=]\s*"
    auth = rf"(?P<keep>authorization{sep}){_SCHEME}(?:{quoted}|{_BARE})"
    return (
        (_KEY_NAMES, re.compile(rf"(?P<keep>{_NAME}{sep})(?:{quoted}|{_BARE})", re.IGNORECASE)),
        (("authorization",), re.compile(auth, re.IGNORECASE)),
        (("cookie",), re.compile(rf"(?P<keep>cookie{sep})(?:{quoted}|{_COOKIE})", re.IGNORECASE)),
    )


_JSON_PAIRS = _pairs(_JSON_QUOTED, r'\\"')
_TEXT_PAIRS = _pairs(_TEXT_QUOTED, '"')
_LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARNING": logging.WARNING}
_LEVELS["ERROR"] = logging.ERROR


@dataclass(slots=True)
class RequestFacts:
    """What the log knows about the request being served (filled in as it is learnt)."""

    request_id: str
    org_id: str | None = None
    actor_role: str | None = None


# Set by the request middleware for the duration of one request; the sync parts of a request
# run in a thread pool with a copy of this context, which shares the same RequestFacts object.
current_request: ContextVar[RequestFacts | None] = ContextVar("teaim_request", default=None)


def note_principal(org_id: UUID, role: str) -> None:
    """Record who is calling, for the request's log line (a no-op outside a request)."""
    facts = current_request.get()
    if facts is not None:
        facts.org_id = str(org_id)
        facts.actor_role = str(role)


class Redactor:
    """Replaces credentials in log text: the configured secrets, and credential shapes."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Very short values are skipped: replacing every "ab" in the log would destroy it, not
        # protect it. A secret is also looked for as it appears inside a JSON string (quotes
        # escaped); longest first, so a secret that contains another is removed whole.
        values = {s for s in secrets if len(s) >= 4}
        values |= {orjson.dumps(s).decode()[1:-1] for s in values}
        self._known = sorted(values, key=len, reverse=True)
        # In a rendered JSON line a secret may also overlap an escape sequence ("0000" in
        # "\u00100000"): replacing it there would break the escape and the line. One pass
        # matches a secret where it starts, else steps over an escape whole.
        self._known_in_json = (
            re.compile(
                "|".join(re.escape(s) for s in self._known)
                + r"|(?P<escape>\\(?:u[0-9A-Fa-f]{4}|.))",
                re.DOTALL,
            )
            if self._known
            else None
        )

    def text(self, text: str, *, json: bool = False) -> str:
        """The text with every credential replaced by [redacted].

        `json`: the text is a rendered JSON document, where a quote inside a string is
        written \\" (a quoted value is recognised, and removed, by its escaped quotes).
        """
        for secret in self._known:
            if secret in text:
                if json and self._known_in_json is not None:
                    text = self._known_in_json.sub(_secret_or_escape, text)
                    break
                text = text.replace(secret, REDACTED)
        lower = text.lower()
        if "bearer" in lower:
            text = _BEARER.sub(_keep_name, text)
        if "eyJ" in text:
            text = _JWT.sub(REDACTED, text)
        if "://" in text:
            text = _URL_PASSWORD.sub(_keep_name, text)
        # Spelt out: an or-chain of substring tests is several times cheaper than one regex
        # alternation or any() (most lines name no credential at all).
        if (
            "passw" in lower
            or "token" in lower
            or "secret" in lower
            or "api_key" in lower
            or "api-key" in lower
            or "apikey" in lower
            or "authorization" in lower
            or "cookie" in lower
        ):
            for words, pattern in _JSON_PAIRS if json else _TEXT_PAIRS:
                if any(word in lower for word in words):
                    text = pattern.sub(_keep_name, text)
        if "%" in text or _SIGNING_HINT.search(text):
            text = _SIGNING.sub(REDACTED, text)
        return text

    def fields(self, fields: dict[str, Any]) -> dict[str, Any]:
        """The fields with credential-named keys blanked, nested dicts and lists included
        (values are scrubbed once rendered)."""
        for key, value in fields.items():
            if _secret_name(key) or isinstance(value, _CONTAINERS):
                break
        else:
            return fields  # the usual line: flat, nothing named like a credential
        return {k: REDACTED if _secret_name(k) else _nested(v, 1) for k, v in fields.items()}


@functools.lru_cache(maxsize=4096)
def _secret_name(key: object) -> bool:
    name = str(key).lower()
    return name in SECRET_KEYS or any(word in name for word in _SECRET_WORDS)


def _nested(value: Any, depth: int) -> Any:
    """A field's value with credential-named keys blanked at every level below it."""
    if isinstance(value, dict):
        if depth >= MAX_FIELD_DEPTH:
            return REDACTED
        return {k: REDACTED if _secret_name(k) else _nested(v, depth + 1) for k, v in value.items()}
    if isinstance(value, _SEQUENCES):
        if depth >= MAX_FIELD_DEPTH:
            return REDACTED
        return [_nested(v, depth + 1) for v in value]
    return value


def _secret_or_escape(match: re.Match[str]) -> str:
    return match.group() if match.group("escape") is not None else REDACTED


def _keep_name(match: re.Match[str]) -> str:
    return match.group("keep") + REDACTED


def settings_secrets(settings: Settings) -> list[str]:
    """Every credential the settings hold, raw and as it appears percent-encoded in a URL."""
    values = [
        secret.get_secret_value()
        for secret in (
            settings.jwt_secret,
            settings.service_token,
            settings.metrics_token,
            settings.read_database_password,
        )
        if secret is not None
    ]
    for url in (settings.database_url, settings.read_database_url):
        if url:
            try:
                password = DatabaseUrl.parse(url).password
            except ValueError:
                continue
            if password:
                values.append(password)
    return values + [quote(v, safe="") for v in values]


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """The record as flat fields: a dict message is taken as is, anything else as `event`."""
    message = record.msg
    fields: dict[str, Any] = (
        dict(message) if isinstance(message, dict) else {"event": record.getMessage()}
    )
    facts = current_request.get()
    if facts is not None and "request_id" not in fields:
        fields["request_id"] = facts.request_id
        fields["org_id"] = facts.org_id
    if record.exc_info:
        fields["exc"] = logging.Formatter().formatException(record.exc_info)
    elif record.exc_text:
        fields["exc"] = record.exc_text
    return fields


class _Timestamps:
    """ISO 8601 UTC with milliseconds; the seconds part formatted once per second (a busy
    process writes hundreds of lines a second, and strftime costs more than the rest)."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, created: float) -> str:
        second = int(created)
        if second != self._second:
            # Two threads may both format a new second; either result is the same string.
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._prefix}.{int((created - second) * 1000):03d}Z"


_timestamp = _Timestamps()


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, event, then the record's fields."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON, credentials removed."""
        document = {
            "ts": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            **self.redactor.fields(_fields(record)),
        }
        line = orjson.dumps(document, default=str).decode()
        return self.redactor.text(line, json=True)


class ConsoleFormatter(logging.Formatter):
    """`time LEVEL logger event key=value...` for a person at a terminal."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        """The record as one readable line (plus a traceback), credentials removed."""
        fields = self.redactor.fields(_fields(record))
        event = fields.pop("event", "")
        exc = fields.pop("exc", None)
        pairs = " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
        line = f"{_timestamp(record.created)} {record.levelname:<7} {record.name}: {event} {pairs}"
        if exc:
            line += "\n" + str(exc)
        return self.redactor.text(line)


class _OurHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler configure_logging installed, so a second call replaces it."""


def configure_logging(
    *,
    level: str = "INFO",
    log_format: Literal["json", "console"] = "json",
    secrets: Iterable[str] = (),
    stream: IO[str] | None = None,
) -> logging.Handler:
    """Send every logger's records through one scrubbing formatter to `stream` (stderr)."""
    redactor = Redactor(secrets)
    formatter: logging.Formatter = (
        JsonFormatter(redactor) if log_format == "json" else ConsoleFormatter(redactor)
    )
    handler = _OurHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    # Neither format shows the process, thread or source line of a record: not collecting them
    # makes every record (one per request) cheaper to create.
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _OurHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(_LEVELS.get(level.upper(), logging.INFO))
    # uvicorn's own handlers would print unscrubbed lines (its access lines carry the query
    # string): its records go through ours instead, and the request line replaces its access log.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    return handler


def configure_from_settings(
    settings: Settings, *, level: str | None = None, stream: IO[str] | None = None
) -> logging.Handler:
    """configure_logging with LOG_LEVEL, LOG_FORMAT and the settings' own secrets."""
    return configure_logging(
        level=level or settings.log_level,
        log_format=settings.log_format,
        secrets=settings_secrets(settings),
        stream=stream,
    )
