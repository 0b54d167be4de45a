"""Outbox invariants over random traffic, on in-memory persistence with a frozen clock.

The reactor is driven the way the runner drives it (each new event in log order: outcome
recorded? perform, record), the release job's command runs between steps, and the clock
jumps around the org's quiet hours and days. Whatever happens: no recipient gets more than
the cap on one org-local day, the quota counts exactly the deliveries, nothing is sent twice,
nothing goes out in quiet hours, a permanently refused email is never sent, and once time has
passed everything deliverable is delivered.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from uuid import uuid4
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from application.app import Teaim
from application.mail_ports import SendErrorKind
from application.mime_message import Sender
from application.outbox_reactor import OutboxReactor, RetryPolicy
from domain.base import TeaimAggregate
from domain.email import Email, EmailKind, EmailStatus
from domain.org import QuietHours
from domain.stamps import Stamp
from tests.support.apps import make_app
from tests.support.clocks import SettableClock
from tests.support.contexts import service
from tests.support.mail_doubles import MemoryMailer

START = datetime(2026, 3, 27, 18, 0, tzinfo=UTC)  # the weekend Europe's clocks move
ADDRESSES = ["a@example.com", "b@example.com"]


class Driver:
    """The reactor fed from the in-memory log, as the runner feeds it."""

    def __init__(self, app: Teaim, reactor: OutboxReactor) -> None:
        self.app = app
        self.reactor = reactor
        self.position = 0

    def run(self) -> None:
        while True:
            batch = self.app.recorder.select_notifications(self.position + 1, 100)
            if not batch:
                return
            for notification in batch:
                self.position = notification.id
                event = self.app.mapper.to_domain_event(notification)
                assert isinstance(event, TeaimAggregate.Event)
                reaction = self.reactor.reaction(event)
                if reaction is None or self.reactor.outcome_recorded(reaction):
                    continue
                self.reactor.record(reaction, self.reactor.perform(reaction))


def release_all(app: Teaim, emails: list[Email], now: datetime) -> None:
    for email in emails:
        app.release_email(
            org_id=email.org_id, email_id=email.id, project_id=None, now=now, cause="test"
        )


def all_final(app: Teaim, emails: list[Email]) -> bool:
    for email in emails:
        found = app.email_of_org(email.org_id, email.id)
        if found is None or not found.final:
            return False
    return True


steps = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=3),  # emails queued this step
        st.sampled_from(ADDRESSES),
        st.integers(min_value=1, max_value=20 * 60),  # minutes the clock moves after
        st.lists(st.sampled_from(list(SendErrorKind)), max_size=2),  # failures scripted
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=40, deadline=None)
@given(
    steps=steps,
    cap=st.integers(min_value=1, max_value=3),
    zone=st.sampled_from(["UTC", "Europe/Berlin", "America/Los_Angeles", "Pacific/Kiritimati"]),
    quiet=st.sampled_from([None, ("22:00", "07:00"), ("01:30", "02:30")]),
)
def test_caps_quotas_and_single_delivery_hold_whatever_the_traffic(
    steps: list[tuple[int, str, int, list[SendErrorKind]]],
    cap: int,
    zone: str,
    quiet: tuple[str, str] | None,
) -> None:
    clock = SettableClock(START)
    app = make_app(clock)
    org = uuid4()
    app.create_org(ctx=service(org), name="Org")
    app.update_org_settings(ctx=service(org), timezone=zone, daily_email_cap=cap, quiet_hours=quiet)
    mailer = MemoryMailer()
    reactor = OutboxReactor(
        app, mailer, Sender.parse("t@teaim.test"), retry=RetryPolicy(60, 600), spread=lambda: 0.5
    )
    driver = Driver(app, reactor)
    emails: list[Email] = []
    for count, address, minutes, failures in steps:
        for _ in range(count):
            stamp = Stamp(org, "service:test", "test", clock.at)
            email = Email.queue(
                email_id=uuid4(),
                kind=EmailKind.DIGEST,
                to=address,
                subject="s",
                text="t",
                html="h",
                mail_domain="teaim.test",
                stamp=stamp,
            )
            app.save(email)
            emails.append(email)
        mailer.failures.extend(failures)
        driver.run()
        clock.set(clock.at + timedelta(minutes=minutes))
        release_all(app, emails, clock.at)
        driver.run()
    # Let days pass until every deferral and retry has ended (no more failures scripted): a
    # cap of one a day needs a day per email to one address.
    mailer.failures.clear()
    for _ in range(4 * (len(emails) + 2)):
        if all_final(app, emails):
            break
        clock.set(clock.at + timedelta(hours=6))
        release_all(app, emails, clock.at)
        driver.run()

    tz = ZoneInfo(zone)
    window = None if quiet is None else QuietHours(*quiet)
    per_day: Counter[tuple[str, date]] = Counter()
    for queued in emails:
        found = app.email_of_org(org, queued.id)
        assert found is not None
        sends = mailer.sends_of(found.id)
        if found.status is EmailStatus.DELIVERED:
            assert sends == 1
            assert found.delivered_at is not None
            local = found.delivered_at.astimezone(tz)
            assert window is None or not window.contains(local.time().replace(tzinfo=None))
            per_day[(found.to, local.date())] += 1
        else:
            assert found.status is EmailStatus.FAILED  # refused for good, never sent
            assert sends == 0
    for (address, day), delivered in per_day.items():
        assert delivered <= cap
        assert app.delivered_on(org, address, day) == delivered
    assert len(mailer.sent) == sum(per_day.values())
