"""`org_comms` and `outbox_emails` from real Org and Email events, as the runner decodes them."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import orjson

from domain.email import Email, EmailKind, LinkName, UnsubscribeLink
from domain.org import DigestWhenEmpty, Org, Weekday
from domain.stamps import Stamp
from projections.audit import TABLE as AUDIT
from projections.audit import AuditProjection
from projections.comms import CommsProjection
from projections.org_comms import ORG_COMMS
from projections.outbox_emails import OUTBOX_EMAILS
from tests.unit.conftest import make_stamp
from tests.unit.projections.support import project, record_from, stored

AT = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def _records(events: list[Any]) -> list[Any]:
    return [record_from(stored(event), n + 1) for n, event in enumerate(events)]


def test_org_comms_follows_the_settings_events() -> None:
    org_id = uuid4()
    stamp = make_stamp(org_id)
    org = Org.create(org_id=org_id, name="Acme", stamp=stamp)
    events: list[Any] = list(org.collect_events())
    tables = project(CommsProjection(), _records(events)).tables
    (row,) = tables.all(ORG_COMMS)
    assert {k: row[k] for k in ("timezone", "quiet_start", "daily_cap")} == {
        "timezone": "UTC",
        "quiet_start": None,
        "daily_cap": 20,
    }
    assert (row["digest_weekday"], row["digest_at"], row["digest_when_empty"]) == (
        "fri",
        "09:00",
        "short",
    )
    org.set_timezone(timezone="America/Los_Angeles", stamp=stamp)
    org.set_quiet_hours(start="21:00", end="06:30", stamp=stamp)
    org.set_daily_email_cap(cap=0, stamp=stamp)
    org.set_digest_schedule(weekday=Weekday.TUE, at="07:15", stamp=stamp)
    org.set_digest_when_empty(value=DigestWhenEmpty.SKIP, stamp=stamp)
    events += org.collect_events()
    (row,) = project(CommsProjection(), _records(events)).tables.all(ORG_COMMS)
    assert row == {
        "org_id": org_id,
        "timezone": "America/Los_Angeles",
        "quiet_start": "21:00",
        "quiet_end": "06:30",
        "daily_cap": 0,
        "digest_weekday": "tue",
        "digest_at": "07:15",
        "digest_when_empty": "skip",
        "updated_at": row["updated_at"],
        "position": len(events),
    }
    org.set_quiet_hours(start=None, end=None, stamp=stamp)
    org.set_digest_schedule(weekday=None, at=None, stamp=stamp)
    events += org.collect_events()
    (row,) = project(CommsProjection(), _records(events)).tables.all(ORG_COMMS)
    assert (row["quiet_start"], row["quiet_end"], row["digest_weekday"], row["digest_at"]) == (
        None,
        None,
        None,
        None,
    )
    assert org.quiet_hours is None
    assert org.digest is None


def test_an_old_org_projects_with_the_monday_slot_it_had() -> None:
    org_id = uuid4()
    created = stored(
        Org.create(org_id=org_id, name="Old", stamp=make_stamp(org_id)).collect_events()[0]
    )
    state = orjson.loads(created.state)
    for name in (
        "timezone",
        "quiet_start",
        "quiet_end",
        "daily_email_cap",
        "digest_weekday",
        "digest_at",
        "digest_when_empty",
        "class_version",
    ):
        state.pop(name, None)
    old = dataclasses.replace(created, state=orjson.dumps(state))
    (row,) = project(CommsProjection(), [record_from(old, 1)]).tables.all(ORG_COMMS)
    assert (row["digest_weekday"], row["digest_at"]) == ("mon", "08:00")


def _email(org_id: Any, project_id: Any, body: str = "hello") -> Email:
    return Email.queue(
        email_id=uuid4(),
        kind=EmailKind.DIGEST,
        to="Client@Example.com",
        subject="Weekly digest",
        text=body,
        html=f"<p>{body}</p>",
        mail_domain="teaim.test",
        stamp=Stamp(org_id, "service:digest", "cid", AT, project_id=project_id),
        links={LinkName.UNSUBSCRIBE_URL: UnsubscribeLink(project_id)},
        period="2026-W48",
        ref=None,
    )


def test_outbox_rows_follow_each_email_through_its_statuses() -> None:
    org_id, project_id = uuid4(), uuid4()
    stamp = Stamp(org_id, "service:outbox", "cid", AT, project_id=project_id)
    email = _email(org_id, project_id)
    events: list[Any] = list(email.collect_events())
    (row,) = project(CommsProjection(), _records(events)).tables.all(OUTBOX_EMAILS)
    assert (row["status"], row["recipient"], row["kind"], row["period"], row["attempts"]) == (
        "queued",
        "client@example.com",
        "digest",
        "2026-W48",
        0,
    )
    assert row["project_id"] == project_id
    assert row["org_id"] == org_id
    until = AT + timedelta(hours=9)
    email.defer(until=until, reason="quiet_hours", stamp=stamp)
    events += email.collect_events()
    (row,) = project(CommsProjection(), _records(events)).tables.all(OUTBOX_EMAILS)
    assert (row["status"], row["reason"], row["not_before"]) == ("deferred", "quiet_hours", until)
    email.release(stamp=stamp)
    email.delivery_failed(code=451, error="451 later", retry_at=until, stamp=stamp)
    events += email.collect_events()
    (row,) = project(CommsProjection(), _records(events)).tables.all(OUTBOX_EMAILS)
    assert (row["status"], row["reason"], row["attempts"]) == ("retrying", "451 later", 1)
    email.release(stamp=stamp)
    email.delivered(reply="250 ok", stamp=stamp)
    events += email.collect_events()
    (row,) = project(CommsProjection(), _records(events)).tables.all(OUTBOX_EMAILS)
    assert (row["status"], row["not_before"], row["attempts"]) == ("delivered", None, 2)
    assert row["delivered_at"] is not None
    assert row["position"] == len(events)

    failing = _email(org_id, project_id)
    failing.failed(code=550, error="550 no such user", stamp=stamp)
    cancelled = _email(org_id, project_id)
    cancelled.cancel(reason="unsubscribed", stamp=stamp)
    events += [*failing.collect_events(), *cancelled.collect_events()]
    rows = {
        r["email_id"]: r
        for r in project(CommsProjection(), _records(events)).tables.all(OUTBOX_EMAILS)
    }
    assert (rows[failing.id]["status"], rows[failing.id]["reason"]) == (
        "failed",
        "550 no such user",
    )
    assert (rows[cancelled.id]["status"], rows[cancelled.id]["reason"]) == (
        "cancelled",
        "unsubscribed",
    )


def test_the_audit_feed_names_email_events_and_leaves_out_bodies_and_token() -> None:
    org_id, project_id = uuid4(), uuid4()
    body = "x" * 150_000
    email = _email(org_id, project_id, body=body)
    stamp = Stamp(org_id, "service:outbox", "cid", AT, project_id=project_id)
    email.delivered(reply="250 ok", stamp=stamp)
    rows = project(AuditProjection(), _records(list(email.collect_events()))).tables.all(AUDIT)
    assert [r["action"] for r in rows] == ["email.queued", "email.delivered"]
    queued = rows[0]["details"]
    assert queued == {
        "kind": "digest",
        "to": "client@example.com",
        "subject": "Weekly digest",
        "message_id": f"<{email.id}@teaim.test>",
        "period": "2026-W48",
        "ref": None,
    }
    assert "secret-token" not in orjson.dumps(rows).decode()
