"""Outbox throughput: messages per second through the outbox against bare smtplib, same run.

`python -m bench.comms_outbox [--messages N] [--rounds R]`

Outbox: N emails queued as events (`Email.queue`, saved in batches of 100), then the outbox
reactor (the production `OutboxReactor` under the production `ReactorRunner`) delivers them to
a loopback aiosmtpd relay over STARTTLS with auth, recording `Delivered` (and the recipient's
daily quota) per email. Baseline: smtplib sending the same N messages' bytes directly over one
STARTTLS session to the same relay. The relay and its parsing cost are shared; the ratio is
what the outbox's bookkeeping (events, one transaction per outcome, the position) costs.
"""

from __future__ import annotations

import argparse
import smtplib
import time
from datetime import UTC, datetime
from uuid import UUID, uuid4

from adapters.mail.smtp import SmtpMailer, parse_smtp_url
from adapters.postgres.database import DatabaseUrl
from adapters.postgres.reactor_runner import ReactorRunner
from adapters.system import OsSecrets, SystemClock
from application.app import Teaim
from application.email_links import EmailLinks
from application.mime_message import Sender, build_message
from application.outbox_reactor import OutboxReactor
from bench._support import scratch_database
from domain.email import Email, EmailKind, LinkName, UnsubscribeLink
from domain.roles import Role
from domain.stamps import Stamp
from tests.support.catch_up import run_to_head
from tests.support.contexts import service, user
from tests.support.smtp_server import PASSWORD, USER, SmtpRelay, smtp_relay

SENDER = Sender.parse("TEAIM <teaim@teaim.localhost>")
_BATCH = 100
# Readers per project (a project's digest list holds at most 500).
_PER_PROJECT = 100


def _address(n: int) -> str:
    return f"reader{n}@example.com"


def _emails(org: UUID, count: int, projects: list[UUID] | None = None) -> list[Email]:
    """Digests to `reader<n>@example.com`, `_PER_PROJECT` readers per project."""
    projects = projects or [uuid4() for _ in range(0, count, _PER_PROJECT)]
    body = "Week 48: 3 documents updated, 1 sign-off waiting on Pat.\n" * 20
    emails = []
    for n in range(count):
        project = projects[n // _PER_PROJECT]
        stamp = Stamp(org, "service:bench", "bench", datetime.now(UTC), project_id=project)
        emails.append(
            Email.queue(
                email_id=uuid4(),
                kind=EmailKind.DIGEST,
                to=_address(n),
                subject=f"Weekly digest {n}",
                text=body,
                html=f"<p>{body}</p>",
                mail_domain="teaim.localhost",
                stamp=stamp,
                links={LinkName.UNSUBSCRIBE_URL: UnsubscribeLink(project)},
            )
        )
    return emails


def _subscribed_projects(app: Teaim, org: UUID, count: int) -> list[UUID]:
    """Projects whose digest lists hold the readers (the outbox withdraws a digest whose
    recipient is not on its project's list, and checks that on every send)."""
    owner = user("owner", org, Role.ADMIN, "bench")
    projects = []
    for first in range(0, count, _PER_PROJECT):
        project = app.create_project(ctx=owner, code=f"B{uuid4().hex[:8]}", name="Bench").id
        for n in range(first, min(count, first + _PER_PROJECT)):
            app.add_digest_recipient(ctx=owner, project_id=project, address=_address(n))
        projects.append(project)
    return projects


def _baseline(relay: SmtpRelay, emails: list[Email], links: EmailLinks) -> float:
    """Seconds smtplib takes to send the messages over one session."""
    # The same bytes the outbox builds, unsubscribe links derived from the same key.
    messages = [build_message(email, SENDER, links) for email in emails]
    start = time.perf_counter()
    with smtplib.SMTP("localhost", relay.port, timeout=30) as conn:
        conn.starttls(context=relay.client_context)
        conn.login(USER, PASSWORD)
        for message in messages:
            conn.sendmail(message.sender, [message.recipient], message.data)
    return time.perf_counter() - start


def _outbox(app: Teaim, url: DatabaseUrl, relay: SmtpRelay, count: int) -> float:
    """Seconds from the first queued email to the last `Delivered` recorded."""
    mailer = SmtpMailer(parse_smtp_url(relay.url(), timeout=30), relay.client_context)
    try:
        org = uuid4()
        app.create_org(ctx=service(org), name="Bench")
        app.update_org_settings(ctx=service(org), daily_email_cap=0)
        runner = ReactorRunner(OutboxReactor(app, mailer, SENDER), url, app.mapper.to_domain_event)
        emails = _emails(org, count, _subscribed_projects(app, org, count))
        run_to_head(url.libpq(), runner)  # past every earlier event
        start = time.perf_counter()
        for first in range(0, count, _BATCH):
            app.save(*emails[first : first + _BATCH])
        run_to_head(url.libpq(), runner)
        seconds = time.perf_counter() - start
        delivered = sum(
            1 for email in emails if (found := app.email_of_org(org, email.id)) and found.final
        )
        assert delivered == count, f"only {delivered} of {count} delivered"
        return seconds
    finally:
        mailer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    count: int = min(max(args.messages, 1), 20_000)
    rounds: int = min(max(args.rounds, 1), 10)
    baselines: list[float] = []
    outboxes: list[float] = []
    with scratch_database() as url, smtp_relay() as relay:
        env = url.eventsourcing_env()
        env["AGGREGATE_CACHE_MAXSIZE"] = "10000"  # as the runtime runs it
        app = Teaim(env, clock=SystemClock(), secrets=OsSecrets(), audit_log=None)
        try:
            # Taking turns, so load from elsewhere on the machine falls on both sides.
            for _ in range(rounds):
                baselines.append(
                    _baseline(relay, _emails(uuid4(), count), EmailLinks.from_config(app.config))
                )
                outboxes.append(_outbox(app, url, relay, count))
        finally:
            app.close()
        assert len(relay.sink.accepted) == 2 * count * rounds
    baseline, outbox = min(baselines), min(outboxes)
    direct_rate, outbox_rate = count / baseline, count / outbox
    print(f"comms outbox: {count} messages to a loopback STARTTLS relay, best of {rounds}")
    print(f"  smtplib direct, one session : {direct_rate:8.1f} msg/s ({baseline:.2f} s)")
    print(f"  outbox (queue, react, record): {outbox_rate:8.1f} msg/s ({outbox:.2f} s)")
    print(f"  ratio outbox/direct: {outbox_rate / direct_rate:.2f}")


if __name__ == "__main__":
    main()
