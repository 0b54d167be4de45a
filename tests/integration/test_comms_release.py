"""The `comms.release` job: due emails of every org released, the rest left waiting."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from adapters.mail.smtp import SmtpMailer, parse_smtp_url
from adapters.postgres.database import DatabaseUrl
from adapters.scheduler.comms_jobs import (
    COMMS_RELEASE_JOB,
    RELEASE_PER_ORG,
    comms_release_job,
    release_due_emails,
)
from adapters.scheduler.jobs import JobRun
from domain.email import EmailStatus
from interfaces.settings import Settings
from tests.support.apps import open_app, seed_org
from tests.support.clocks import SettableClock
from tests.support.contexts import service
from tests.support.outbox import Outbox
from tests.support.outbox_rows import mirror
from tests.support.smtp_server import SmtpRelay, smtp_relay

LATE = datetime(2026, 11, 26, 23, 0, tzinfo=UTC)  # inside 22:00-07:00 UTC quiet hours
MORNING = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)


@pytest.fixture
def relay() -> Iterator[SmtpRelay]:
    with smtp_relay() as running:
        yield running


@pytest.fixture
def quiet_outbox(database_url: str, relay: SmtpRelay) -> Iterator[Outbox]:
    clock = SettableClock(LATE)
    app = open_app(database_url, clock=clock)
    mailer = SmtpMailer(parse_smtp_url(relay.url(), timeout=5.0), relay.client_context)
    try:
        org, project, _owner = seed_org(app)
        app.update_org_settings(ctx=service(org), quiet_hours=("22:00", "07:00"), daily_email_cap=0)
        yield Outbox.build(app, clock, database_url, org, project, mailer)
    finally:
        mailer.close()
        app.close()


def test_due_emails_of_every_org_are_released_and_then_delivered(
    quiet_outbox: Outbox, relay: SmtpRelay
) -> None:
    outbox = quiet_outbox
    emails = [outbox.queue(f"u{n}@example.com") for n in range(5)]
    outbox.run()  # quiet hours: every one deferred to 07:00
    # A second org whose email waits for a retry that is not due yet.
    other_org, other_project, _ = seed_org(outbox.app)
    outbox.app.update_org_settings(ctx=service(other_org), daily_email_cap=0)
    later = Outbox.build(
        outbox.app, outbox.clock, outbox.url, other_org, other_project, outbox.reactor.mailer
    )
    relay.sink.data_replies.append("451 4.3.0 later")
    outbox.clock.set(MORNING - timedelta(seconds=30))  # its retry is due at 07:00:30
    retrying = later.queue("x@example.com")
    outbox.run()
    for email in emails:
        mirror(outbox.url, outbox.email(email.id), outbox.project)
    mirror(outbox.url, later.email(retrying.id), other_project)
    assert later.email(retrying.id).status is EmailStatus.RETRYING

    outbox.clock.set(MORNING)
    result = release_due_emails(DatabaseUrl.parse(outbox.url), outbox.app, MORNING, page=2)

    assert result == {"released": 5, "failed": 0, "seen": 5}  # across three pages
    assert all(outbox.email(e.id).status is EmailStatus.QUEUED for e in emails)
    assert later.email(retrying.id).status is EmailStatus.RETRYING  # not due until 07:00
    outbox.run()
    assert sorted(relay.sink.message_ids()) == sorted(e.message_id for e in emails)


def test_a_stale_row_or_a_repeat_run_releases_nothing_twice(quiet_outbox: Outbox) -> None:
    outbox = quiet_outbox
    email = outbox.queue()
    outbox.run()
    mirror(outbox.url, outbox.email(email.id), outbox.project)
    job = comms_release_job(
        DatabaseUrl.parse(outbox.url), outbox.app, outbox.clock, timedelta(minutes=1)
    )
    assert job.id == COMMS_RELEASE_JOB
    outbox.clock.set(MORNING)
    run = JobRun(COMMS_RELEASE_JOB, MORNING, "test", None)

    assert job.run(run) == {"released": 1, "failed": 0, "seen": 1}
    # The read model still says "deferred" (its projection has not run): the aggregate decides.
    assert job.run(run) == {"released": 0, "failed": 0, "seen": 1}
    assert outbox.events(email.id) == ["Queued", "Deferred", "Released"]


def test_a_run_takes_the_orgs_round_robin_so_one_backlog_holds_back_nobody(
    quiet_outbox: Outbox,
) -> None:
    # Org A: twelve emails deferred by quiet hours ending 06:00; org B: one, ending 07:00.
    # Oldest-first, A's twelve would fill a run of six before B's turn ever came.
    a = quiet_outbox
    a.app.update_org_settings(ctx=service(a.org), quiet_hours=("22:00", "06:00"))
    backlog = [a.queue(f"a{n}@example.com") for n in range(12)]
    b_org, b_project, _ = seed_org(a.app)
    a.app.update_org_settings(ctx=service(b_org), quiet_hours=("22:00", "07:00"), daily_email_cap=0)
    b = Outbox.build(a.app, a.clock, a.url, b_org, b_project, a.reactor.mailer)
    lone = b.queue("b@example.com")
    a.run()
    for email in backlog:
        mirror(a.url, a.email(email.id), a.project)
    mirror(a.url, b.email(lone.id), b_project)
    assert b.email(lone.id).status is EmailStatus.DEFERRED

    a.clock.set(MORNING)
    url = DatabaseUrl.parse(a.url)
    first = release_due_emails(url, a.app, MORNING, page=3, max_pages=2)

    assert first == {"released": 6, "failed": 0, "seen": 6}
    assert b.email(lone.id).status is EmailStatus.QUEUED  # B's one email: in the first run
    released = [e for e in backlog if a.email(e.id).status is EmailStatus.QUEUED]
    assert len(released) == 5
    # With the read model caught up, a cap per org leaves the rest of A's for later runs.
    for email in backlog:
        mirror(a.url, a.email(email.id), a.project)
    mirror(a.url, b.email(lone.id), b_project)
    capped = release_due_emails(url, a.app, MORNING, page=3, max_pages=2, per_org=2)
    assert capped == {"released": 2, "failed": 0, "seen": 2}


def test_the_job_releases_a_small_share_per_org_and_the_rest_on_later_runs(
    quiet_outbox: Outbox,
) -> None:
    # One org's backlog after quiet hours: the job releases at most `per_org` a run (default a
    # small share of a minute's deliveries), the rest on the following runs.
    assert RELEASE_PER_ORG == Settings().outbox_release_per_org == 200
    outbox = quiet_outbox
    backlog = [outbox.queue(f"q{n}@example.com") for n in range(5)]
    outbox.run()
    outbox.clock.set(MORNING)
    job = comms_release_job(
        DatabaseUrl.parse(outbox.url), outbox.app, outbox.clock, timedelta(minutes=1), per_org=2
    )
    run = JobRun(COMMS_RELEASE_JOB, MORNING, "test", None)
    released: list[int] = []
    for _ in range(4):
        for email in backlog:
            mirror(outbox.url, outbox.email(email.id), outbox.project)
        result = job.run(run)
        assert result is not None
        released.append(result["released"])
    assert released == [2, 2, 1, 0]
    assert all(outbox.email(e.id).status is EmailStatus.QUEUED for e in backlog)
