"""A real SMTP server on loopback (aiosmtpd) for the outbox's tests and bench.

STARTTLS is required, with a certificate for `localhost` from a throwaway CA
(tests/support/tls_ca.py), and AUTH (teaim / s3cret) only after it. Tests script refusals
(per recipient at RCPT, or the next DATA replies) and read what arrived, parsed, plus every
raw DATA the server took (a crash test counts those even when a relay would deduplicate).

Two aiosmtpd 1.4.6 pitfalls: `Controller(port=0)` fails its own start-up probe, so a free
port is found first; and `AuthResult(success=False)` defaults to `handled=True`, which sends
no reply at all (the client hangs until its timeout), so `handled=False` is returned.
"""

from __future__ import annotations

import email
import email.policy
import logging
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support.tls_ca import tls_pair

USER, PASSWORD = "teaim", "s3cret"
# aiosmtpd 1.4.6 warns on every login about its own deprecated `Session.login_data`.
logging.getLogger("mail.log").setLevel(logging.ERROR)


@dataclass
class Sink:
    """The server's handler: what it received, and the replies a test scripted."""

    messages: list[EmailMessage] = field(default_factory=list)
    # Raw bytes of every DATA the server accepted, in order (repeats included).
    accepted: list[bytes] = field(default_factory=list)
    rcpt_replies: dict[str, str] = field(default_factory=dict)  # address -> "550 5.1.1 ..."
    data_replies: list[str] = field(default_factory=list)  # popped per DATA: "451 4.3.0 ..."
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Set when a message is accepted (tests wait on it with a deadline).
    arrived: threading.Condition = field(default_factory=threading.Condition)

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook, called positionally)
        self,
        _server: Any,
        _session: Any,
        envelope: Any,
        address: str,
        _rcpt_options: list[str],
    ) -> str:
        with self.lock:
            reply = self.rcpt_replies.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 (aiosmtpd's hook, called positionally)
        self, _server: Any, _session: Any, envelope: Any
    ) -> str:
        with self.lock:
            if self.data_replies:
                return self.data_replies.pop(0)
            content: bytes = envelope.original_content or envelope.content
            self.accepted.append(content)
            parsed = email.message_from_bytes(content, policy=email.policy.default)
            assert isinstance(parsed, EmailMessage)
            self.messages.append(parsed)
        with self.arrived:
            self.arrived.notify_all()
        return "250 2.0.0 queued"

    def message_ids(self) -> list[str]:
        """The Message-ID of every accepted DATA, repeats included."""
        with self.lock:
            return [str(message["Message-ID"]) for message in self.messages]


def _authenticate(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


def free_port() -> int:
    """A loopback port nobody listens on right now (aiosmtpd cannot take port 0)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@dataclass
class SmtpRelay:
    """A running loopback relay, and how a client reaches it."""

    sink: Sink
    port: int
    # Trusts the throwaway CA (and checks the name `localhost`).
    client_context: ssl.SSLContext

    def url(self, *, user: str = USER, password: str = PASSWORD) -> str:
        return f"smtp://{user}:{password}@localhost:{self.port}?starttls=1"


@contextmanager
def smtp_relay(*, require_auth: bool = True) -> Iterator[SmtpRelay]:
    """A STARTTLS relay on loopback for the duration of the block."""
    server_context, client_context = tls_pair("localhost")
    sink = Sink()
    port = free_port()
    controller = Controller(
        sink,
        hostname="127.0.0.1",
        port=port,
        server_hostname="localhost",
        tls_context=server_context,
        require_starttls=True,
        authenticator=_authenticate if require_auth else None,
        auth_require_tls=True,
        auth_required=require_auth,
    )
    controller.start()
    try:
        yield SmtpRelay(sink, port, client_context)
    finally:
        controller.stop()
