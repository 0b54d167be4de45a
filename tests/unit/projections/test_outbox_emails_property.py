"""The outbox row agrees with its email, whatever happens to the email in whatever order.

Random runs of the Email aggregate's own operations (each applied only when its rules allow
it), stored and decoded as the runner reads them, then the projection: the row's status,
reason, wait, attempts and delivery time are exactly the aggregate's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.email import Email, EmailKind, EmailStatus
from domain.errors import RuleViolationError
from domain.stamps import Stamp
from projections.comms import CommsProjection
from projections.outbox_emails import OUTBOX_EMAILS
from tests.unit.projections.support import project, record_from, stored

START = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
STEPS = ("defer", "release", "temporary", "deliver", "fail", "cancel")


def _apply(email: Email, step: str, stamp: Stamp) -> None:
    later = stamp.at + timedelta(minutes=30)
    try:
        if step == "defer":
            email.defer(until=later, reason="daily_cap", stamp=stamp)
        elif step == "release":
            email.release(stamp=stamp)
        elif step == "temporary":
            email.delivery_failed(code=451, error="451 later", retry_at=later, stamp=stamp)
        elif step == "deliver":
            email.delivered(reply="250 ok", stamp=stamp)
        elif step == "fail":
            email.failed(code=550, error="550 gone", stamp=stamp)
        else:
            email.cancel(reason="unsubscribed", stamp=stamp)
    except RuleViolationError:
        pass  # the email is final: the operation is refused, nothing recorded


@settings(max_examples=150, deadline=None)
@given(runs=st.lists(st.lists(st.sampled_from(STEPS), max_size=15), min_size=1, max_size=4))
def test_each_row_is_its_email(runs: list[list[str]]) -> None:
    org_id, project_id = uuid4(), uuid4()
    events: list[Any] = []
    emails: list[Email] = []
    at = START
    for n, steps in enumerate(runs):
        stamp = Stamp(org_id, "service:outbox", "cid", at, project_id=project_id)
        email = Email.queue(
            email_id=uuid4(),
            kind=EmailKind.DIGEST if n % 2 else EmailKind.SIGNOFF_PACKAGE,
            to=f"r{n}@example.com",
            subject=f"Subject {n}",
            text="t",
            html="<p>h</p>",
            mail_domain="teaim.test",
            stamp=stamp,
        )
        for step in steps:
            at += timedelta(minutes=1)
            _apply(email, step, Stamp(org_id, "service:outbox", "cid", at, project_id=project_id))
        events += email.collect_events()
        emails.append(email)

    records = [record_from(stored(event), n + 1) for n, event in enumerate(events)]
    rows = {
        row["email_id"]: row
        for row in project(CommsProjection(), records).tables.all(OUTBOX_EMAILS)
    }
    assert set(rows) == {email.id for email in emails}
    for email in emails:
        row = rows[email.id]
        assert row["status"] == email.status.value
        assert row["not_before"] == email.not_before
        assert row["attempts"] == email.attempts
        assert row["delivered_at"] == email.delivered_at
        assert (row["org_id"], row["project_id"]) == (org_id, project_id)
        if email.status is EmailStatus.DEFERRED:
            assert row["reason"] == email.defer_reason
        elif email.status in (EmailStatus.RETRYING, EmailStatus.FAILED):
            assert row["reason"] == email.last_error
        assert row["status"] != EmailStatus.DELIVERED.value or row["delivered_at"] is not None
