"""The outbox on a test database: queue emails, run the reactor, read the outcome events."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID, uuid4

import psycopg

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.reactor_runner import ReactorRunner
from application.app import Teaim
from application.mail_ports import Mailer
from application.mime_message import Sender
from application.outbox_reactor import OutboxReactor, Outcome, RetryPolicy
from application.reactors import Reaction
from domain.email import Email, EmailKind, LinkName, UnsubscribeLink
from domain.stamps import Stamp
from tests.support.catch_up import run_to_head
from tests.support.clocks import SettableClock
from tests.support.contexts import service
from tests.support.reactors import Crash

SENDER = Sender.parse("TEAIM <teaim@teaim.localhost>")
MAIL_DOMAIN = "mail.teaim.test"


class CrashableOutbox(OutboxReactor):
    """The production reactor, with switches that kill the process around the record."""

    crash_before_record = False
    crash_after_record = False

    def record(self, reaction: Reaction, outcome: Outcome) -> None:
        if self.crash_before_record:
            self.crash_before_record = False
            raise Crash("killed between the relay's acceptance and Delivered")
        super().record(reaction, outcome)
        if self.crash_after_record:
            self.crash_after_record = False
            raise Crash("killed after Delivered, before the position moved")


@dataclass
class Outbox:
    """An app with a settable clock, the outbox reactor over `mailer`, and its runner."""

    app: Teaim
    clock: SettableClock
    url: str
    org: UUID
    project: UUID
    reactor: CrashableOutbox

    @classmethod
    def build(
        cls, app: Teaim, clock: SettableClock, url: str, org: UUID, project: UUID, mailer: Mailer
    ) -> Outbox:
        # Jitter pinned to its middle: a retry waits exactly base * 2^(n-1).
        reactor = CrashableOutbox(
            app, mailer, SENDER, retry=RetryPolicy(60, 3600), spread=lambda: 0.5
        )
        return cls(app, clock, url, org, project, reactor)

    def run(self) -> int:
        """A fresh runner (a restarted process) to the head of the log."""
        runner = ReactorRunner(
            self.reactor, DatabaseUrl.parse(self.url), self.app.mapper.to_domain_event
        )
        return run_to_head(self.url, runner)

    def replay_from_start(self) -> int:
        """Move the reactor's position back to 0 and run it again (a rebuild)."""
        with psycopg.connect(self.url) as conn:
            conn.execute(
                "UPDATE projection_tracking SET position = 0 WHERE name = %s",
                (f"reactor:{self.reactor.name}",),
            )
        return self.run()

    def queue(self, to: str = "pat@example.com", *, unsubscribe: bool = True) -> Email:
        """A digest to `to`, who is put on the project's digest list first (the outbox
        withdraws a digest whose recipient is not on it)."""
        self.app.add_digest_recipient(ctx=service(self.org), project_id=self.project, address=to)
        stamp = Stamp(self.org, "service:test", "test", self.clock.at, project_id=self.project)
        email = Email.queue(
            email_id=uuid4(),
            kind=EmailKind.DIGEST,
            to=to,
            subject="Weekly digest: Olive",
            text="Nothing changed this week.\n",
            html="<p>Nothing changed this week.</p>\n",
            mail_domain=MAIL_DOMAIN,
            stamp=stamp,
            links={LinkName.UNSUBSCRIBE_URL: UnsubscribeLink(self.project)}
            if unsubscribe
            else None,
            period="2026-W48",
        )
        self.app.save(email)
        return email

    def email(self, email_id: UUID) -> Email:
        found = self.app.email_of_org(self.org, email_id)
        assert found is not None
        return found

    def events(self, email_id: UUID) -> list[str]:
        """The email's event class names, oldest first."""
        return [
            type(self.app.mapper.to_domain_event(stored)).__name__
            for stored in self.app.recorder.select_events(email_id)
        ]
