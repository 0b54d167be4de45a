"""The SMTP mailer: stdlib `smtplib`, one verified connection reused across sends.

Why stdlib and sync: the outbox reactor runs on its own thread (docs/decisions/0006), so an
async client would need an event loop per reactor for no gain, and smtplib adds no dependency.

Pitfalls handled here (docs/decisions/0026-email-outbox.md):
- `starttls()` and `SMTP_SSL` without `context=` do NOT verify the certificate in 3.11: a
  verifying context (the system's trust store, or `SMTP_CA_FILE`) is always passed.
- Credentials never cross a plain-text connection unless the relay is on loopback.
- One connection is kept and reused (a TLS handshake per message would dominate the cost);
  a reused connection the relay closed meanwhile is reopened once, but only when it fails
  before the message was handed over (at MAIL FROM), so a retry in place never repeats DATA.
- A session that cannot be set up (relay down, bad credentials) pauses the mailer for a
  while: the emails behind it fail fast (and wait with backoff) instead of each paying a
  connect timeout or sending another bad login.
- Failures are classified by reply code (4xx temporary, 5xx permanent), not by exception
  class: smtplib raises `SMTPRecipientsRefused` for a temporary 421 too.
"""

from __future__ import annotations

import contextlib
import ipaddress
import smtplib
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from adapters.mail.recipients import require_smtp_recipient
from application.mail_ports import MailSendError, OutgoingMessage, SendErrorKind

_TRUE = frozenset({"1", "true", "yes", "on"})
# How long a failed session set-up makes later sends fail fast (see SmtpMailer._session).
DEFAULT_PAUSE_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """Where and how to reach the relay (from `SMTP_URL`)."""

    host: str
    port: int
    implicit_tls: bool  # smtps://: TLS from the first byte
    starttls: bool  # smtp://...?starttls=1: upgrade before anything else
    username: str | None
    password: str | None
    timeout: float

    @property
    def encrypted(self) -> bool:
        return self.implicit_tls or self.starttls


def is_loopback(host: str) -> bool:
    """`localhost` or a loopback address literal."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_smtp_url(url: str, *, timeout: float) -> SmtpConfig:
    """`smtp://user:pass@host:587?starttls=1` or `smtps://user:pass@host:465`.

    Refuses credentials over a plain-text connection to anything but loopback.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError("SMTP_URL must start with smtp:// or smtps://")
    if not parts.hostname:
        raise ValueError("SMTP_URL names no host")
    implicit_tls = parts.scheme == "smtps"
    query = parse_qs(parts.query)
    starttls = not implicit_tls and any(v.lower() in _TRUE for v in query.get("starttls", []))
    default_port = 465 if implicit_tls else (587 if starttls else 25)
    config = SmtpConfig(
        host=parts.hostname,
        port=parts.port or default_port,
        implicit_tls=implicit_tls,
        starttls=starttls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        timeout=timeout,
    )
    if config.username and not config.encrypted and not is_loopback(config.host):
        raise ValueError(
            "SMTP_URL sends credentials in plain text: use smtps:// or ?starttls=1"
            " (plain SMTP with auth is allowed only on loopback)"
        )
    return config


def verifying_context(ca_file: Path | None = None) -> ssl.SSLContext:
    """A context that checks the relay's certificate and name (plus a private CA, if given)."""
    context = ssl.create_default_context()
    if ca_file is not None:
        context.load_verify_locations(cafile=str(ca_file))
    return context


def _reply_kind(code: int) -> SendErrorKind:
    return SendErrorKind.PERMANENT if 500 <= code < 600 else SendErrorKind.TEMPORARY


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply


def classify_send_error(error: BaseException) -> MailSendError:
    """What a failure while handing a message over means (after the session was set up)."""
    if isinstance(error, MailSendError):
        return error
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in error.recipients.values()]
        replies = "; ".join(f"{c} {_text(r)}" for c, r in error.recipients.values())
        permanent = bool(codes) and all(500 <= c < 600 for c in codes)
        kind = SendErrorKind.PERMANENT if permanent else SendErrorKind.TEMPORARY
        return MailSendError(
            kind, f"recipient refused: {replies}", code=codes[0] if codes else None
        )
    if isinstance(error, smtplib.SMTPResponseException):
        code = error.smtp_code
        return MailSendError(_reply_kind(code), f"{code} {_text(error.smtp_error)}", code=code)
    if isinstance(error, ssl.SSLCertVerificationError):
        return MailSendError(SendErrorKind.CONFIG, f"relay certificate refused: {error}")
    # Disconnects, timeouts, refused connections, TLS trouble: the relay may come back.
    return MailSendError(SendErrorKind.TEMPORARY, f"{type(error).__name__}: {error}")


def classify_session_error(error: BaseException) -> MailSendError:
    """What a failure while connecting, upgrading or logging in means.

    Bad credentials, a relay without STARTTLS or AUTH, an untrusted certificate are ours to
    fix (config: retried with backoff, logged, never a permanent failure of the email); a
    4xx greeting (busy) or a network failure is temporary.
    """
    if isinstance(error, smtplib.SMTPAuthenticationError | smtplib.SMTPNotSupportedError):
        return MailSendError(SendErrorKind.CONFIG, f"relay session refused: {error}")
    if isinstance(error, smtplib.SMTPResponseException):
        code = error.smtp_code
        kind = SendErrorKind.TEMPORARY if 400 <= code < 500 else SendErrorKind.CONFIG
        return MailSendError(kind, f"relay session refused: {code} {_text(error.smtp_error)}")
    if isinstance(error, smtplib.SMTPServerDisconnected | smtplib.SMTPConnectError):
        return MailSendError(SendErrorKind.TEMPORARY, f"{type(error).__name__}: {error}")
    if isinstance(error, smtplib.SMTPException):  # "no suitable authentication method", ...
        return MailSendError(SendErrorKind.CONFIG, f"relay session refused: {error}")
    return classify_send_error(error)


class SmtpMailer:
    """Sends through one relay; thread-safe (one send at a time on the one connection)."""

    def __init__(
        self,
        config: SmtpConfig,
        context: ssl.SSLContext,
        *,
        pause_seconds: float = DEFAULT_PAUSE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if context.verify_mode != ssl.CERT_REQUIRED or not context.check_hostname:
            raise ValueError("the SMTP mailer needs a context that verifies certificates")
        self.config = config
        self.context = context
        self.pause_seconds = pause_seconds
        self._monotonic = monotonic
        self._conn: smtplib.SMTP | None = None
        self._lock = threading.Lock()
        # After a failed session set-up: fail fast until then (monotonic seconds), with why.
        self._paused: tuple[float, MailSendError] | None = None
        # Sessions opened, and set-ups tried (the bench and tests read them).
        self.connections = 0
        self.attempts = 0

    def send(self, message: OutgoingMessage) -> str:
        # Before any session: a recipient smtplib would re-parse into another mailbox is
        # refused for good, never handed to the relay.
        require_smtp_recipient(message.recipient)
        with self._lock:
            reused = self._conn is not None
            try:
                code, reply = self._session().mail(message.sender)
            except (smtplib.SMTPServerDisconnected, OSError) as error:
                self._drop()
                if not reused:
                    raise classify_send_error(error) from error
                # The relay closed an idle session (or it went half-open and timed out):
                # nothing was handed over yet, so a new session may take the message.
                code, reply = self._mail_from(self._session(), message.sender)
            except smtplib.SMTPException as error:
                self._drop()
                raise classify_send_error(error) from error
            conn = self._session()
            if code != 250:
                self._reset(conn)
                raise classify_send_error(smtplib.SMTPSenderRefused(code, reply, message.sender))
            return self._hand_over(conn, message)

    def _mail_from(self, conn: smtplib.SMTP, sender: str) -> tuple[int, bytes]:
        try:
            return conn.mail(sender)
        except (smtplib.SMTPException, OSError) as error:
            self._drop()
            raise classify_send_error(error) from error

    def _hand_over(self, conn: smtplib.SMTP, message: OutgoingMessage) -> str:
        try:
            code, reply = conn.rcpt(message.recipient)
            if code not in (250, 251):
                self._reset(conn)
                raise smtplib.SMTPRecipientsRefused({message.recipient: (code, reply)})
            code, reply = conn.data(message.data)
            if code != 250:
                self._reset(conn)
                raise smtplib.SMTPDataError(code, reply)
        except (smtplib.SMTPException, OSError) as error:
            failure = classify_send_error(error)
            answered = isinstance(
                error, smtplib.SMTPResponseException | smtplib.SMTPRecipientsRefused
            )
            if not answered or failure.code == 421:
                self._drop()  # the session is in an unknown state (or the relay is closing)
            raise failure from error
        return f"{code} {_text(reply)}"

    def _session(self) -> smtplib.SMTP:
        """The open session, or a new one: connected, upgraded, logged in."""
        if self._conn is not None:
            return self._conn
        if self._paused is not None:
            until, why = self._paused
            if self._monotonic() < until:
                # A relay that just refused us (down, blackholed, bad credentials) is not
                # asked again per email: each waiting email would pay a connect timeout, and
                # a login storm with a bad password can get our address blocked.
                raise MailSendError(why.kind, f"relay paused after: {why}", code=why.code)
            self._paused = None
        config = self.config
        conn: smtplib.SMTP | None = None
        self.attempts += 1
        try:
            if config.implicit_tls:
                conn = smtplib.SMTP_SSL(
                    config.host, config.port, timeout=config.timeout, context=self.context
                )
            else:
                conn = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
            conn.ehlo()
            if config.starttls:
                if not conn.has_extn("starttls"):
                    raise smtplib.SMTPNotSupportedError("the relay does not offer STARTTLS")
                conn.starttls(context=self.context)
                conn.ehlo()
            if config.username:
                conn.login(config.username, config.password or "")
        except (smtplib.SMTPException, OSError) as error:
            if conn is not None:
                _close_quietly(conn)
            failure = classify_session_error(error)
            self._paused = (self._monotonic() + self.pause_seconds, failure)
            raise failure from error
        self.connections += 1
        self._conn = conn
        return conn

    def _reset(self, conn: smtplib.SMTP) -> None:
        try:
            conn.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            _close_quietly(self._conn)
            self._conn = None

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(smtplib.SMTPException, OSError):
                    self._conn.quit()
                self._drop()


def _close_quietly(conn: smtplib.SMTP) -> None:
    with contextlib.suppress(OSError):
        conn.close()
