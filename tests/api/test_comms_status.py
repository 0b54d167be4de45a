"""`GET .../comms/status` and `GET .../emails`, driven by real Email events committed through
the application (queued, deferred, retrying, delivered, failed) and a frozen clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from domain.email import Email, EmailKind, digest_email_id
from domain.roles import Role
from domain.stamps import Stamp
from interfaces.http.models.comms import CommsStatusOut, OutboxPageOut
from projections.audit import AuditProjection
from projections.comms import CommsProjection
from tests.api.conftest import EPOCH, Api, assert_problem, dev

# EPOCH is Monday 2030-01-07 09:00 UTC; Berlin is on CET (+01:00) in January.
SETTINGS: dict[str, Any] = {
    "timezone": "Europe/Berlin",
    "quiet_hours": {"start": "22:00", "end": "07:00"},
    "daily_cap": 3,
    "digest": {"weekday": "fri", "at": "09:00"},
    "digest_when_empty": "short",
}
LAST_WEEK = "2030-W01"


@dataclass
class Team:
    """An org with comms settings and a project: olive owns it, pam is its pm, max a member."""

    api: Api
    org: UUID
    project: UUID

    def stamp(self) -> Stamp:
        return Stamp(
            self.org, "service:outbox", f"cid-{uuid4()}", self.api.clock.now(), self.project
        )

    def queue(self, to: str, kind: EmailKind = EmailKind.DIGEST) -> Email:
        """Queue an email the way a command does: the aggregate, saved by the application."""
        digest = kind is EmailKind.DIGEST
        email = Email.queue(
            email_id=digest_email_id(self.project, to, LAST_WEEK) if digest else uuid4(),
            kind=kind,
            to=to,
            subject="Weekly digest" if digest else "Sign-off package",
            text="body " * 1000,
            html="<p>body</p>",
            mail_domain="teaim.test",
            stamp=self.stamp(),
            period=LAST_WEEK if digest else None,
            ref=None if digest else "stage:1",
        )
        self.api.runtime.app.save(email)
        return email

    def change(self, email: Email) -> None:
        self.api.runtime.app.save(email)

    def status(self, user: str, role: Role = Role.MEMBER) -> dict[str, Any]:
        self.api.catch_up(CommsProjection())
        response = self.api.client.get(
            f"/api/projects/{self.project}/comms/status", headers=dev(user, self.org, role)
        )
        assert response.status_code == 200, response.text
        CommsStatusOut.model_validate(response.json())
        body: dict[str, Any] = response.json()
        return body

    def emails(self, user: str = "pam", **params: Any) -> Any:
        self.api.catch_up(CommsProjection())
        return self.api.client.get(
            f"/api/projects/{self.project}/emails",
            params=params,
            headers=dev(user, self.org, Role.MEMBER),
        )


@pytest.fixture
def team(api: Api) -> Team:
    org = api.new_org()
    response = api.client.put("/api/orgs/current/comms", json=SETTINGS, headers=dev("olive", org))
    assert response.status_code == 200, response.text
    project = api.create_project("olive", org)
    api.add_member(project, by="olive", org=org, user="pam", role=Role.PM)
    api.add_member(project, by="olive", org=org, user="max", role=Role.MEMBER)
    return Team(api, org, project)


def _at(hours: float) -> datetime:
    return EPOCH + timedelta(hours=hours)


def _scene(team: Team) -> dict[str, Email]:
    """Last week's digest delivered to two of three recipients (the third deferred by quiet
    hours), a package retrying after a 451, another failed for good."""
    clock = team.api.clock
    emails = {to: team.queue(f"{to}@example.com") for to in ("ann", "bob", "cat")}
    clock.set(_at(0.5))
    for to in ("ann", "bob"):
        emails[to].delivered(reply="250 ok", stamp=team.stamp())
        team.change(emails[to])
    emails["cat"].defer(until=_at(21), reason="quiet_hours", stamp=team.stamp())
    team.change(emails["cat"])
    clock.set(_at(1))
    retrying = team.queue("client@example.org", EmailKind.SIGNOFF_PACKAGE)
    retrying.delivery_failed(
        code=451, error="451 4.3.0 later", retry_at=_at(1.25), stamp=team.stamp()
    )
    team.change(retrying)
    clock.set(_at(2))
    failed = team.queue("gone@example.org", EmailKind.SIGNOFF_PACKAGE)
    failed.failed(code=550, error="550 5.1.1 no such user", stamp=team.stamp())
    team.change(failed)
    return {**emails, "retrying": retrying, "failed": failed}


def test_the_status_shows_last_digest_next_window_waits_failures_and_counts(team: Team) -> None:
    emails = _scene(team)
    body = team.status("pam")
    assert body["now"] == "2030-01-07T11:00:00Z"
    assert body["timezone"] == "Europe/Berlin"
    assert body["digest"] == {
        "state": "scheduled",
        "last": {"period": LAST_WEEK, "sent_at": "2030-01-07T09:30:00Z", "recipients": 2},
        # Friday 09:00 in Berlin (CET) is 08:00 UTC, in this week's period.
        "next": {
            "at": "2030-01-11T08:00:00Z",
            "local": "2030-01-11T09:00:00+01:00",
            "timezone": "Europe/Berlin",
            "period": "2030-W02",
        },
    }
    assert body["counts"] == {
        "queued": 0,
        "deferred": 1,
        "retrying": 1,
        "delivered": 2,
        "failed": 1,
        "cancelled": 0,
    }
    # Soonest first: the retry at 10:15 UTC, then the end of the quiet hours (07:00 local).
    assert [
        (w["email_id"], w["status"], w["reason"], w["until"], w["until_local"], w["recipient"])
        for w in body["waiting"]
    ] == [
        (
            str(emails["retrying"].id),
            "retrying",
            "451 4.3.0 later",
            "2030-01-07T10:15:00Z",
            "2030-01-07T11:15:00+01:00",
            "client@example.org",
        ),
        (
            str(emails["cat"].id),
            "deferred",
            "quiet_hours",
            "2030-01-08T06:00:00Z",
            "2030-01-08T07:00:00+01:00",
            "cat@example.com",
        ),
    ]
    (failure,) = body["recent_failures"]
    assert (failure["email_id"], failure["reason"], failure["recipient"]) == (
        str(emails["failed"].id),
        "550 5.1.1 no such user",
        "gone@example.org",
    )
    assert failure["failed_at"] == "2030-01-07T11:00:00Z"
    assert body["recipients_shown"] is True


def test_a_digest_sent_by_hand_after_the_weeks_one_is_the_last_digest(team: Team) -> None:
    _scene(team)
    team.api.clock.set(_at(3))
    # A manual send: no period, its emails queued by one command (one instant).
    stamp = team.stamp()
    manual = [
        Email.queue(
            email_id=uuid4(),
            kind=EmailKind.DIGEST,
            to=f"{to}@example.com",
            subject="Digest",
            text="body",
            html="<p>body</p>",
            mail_domain="teaim.test",
            stamp=stamp,
        )
        for to in ("ann", "bob", "cat")
    ]
    team.api.clock.set(_at(3.5))
    for email in manual:
        email.delivered(reply="250 ok", stamp=team.stamp())
    team.api.runtime.app.save(*manual)

    last = team.status("pam")["digest"]["last"]
    assert last == {"period": None, "sent_at": "2030-01-07T12:30:00Z", "recipients": 3}


def test_members_below_pm_see_counts_but_no_addresses(team: Team) -> None:
    _scene(team)
    pm, member = team.status("pam"), team.status("max")
    assert member["recipients_shown"] is False
    assert all(w["recipient"] is None for w in member["waiting"])
    assert all(f["recipient"] is None for f in member["recent_failures"])
    assert "@" not in str(member)
    strip = ("recipients_shown", "waiting", "recent_failures")
    assert {k: v for k, v in member.items() if k not in strip} == {
        k: v for k, v in pm.items() if k not in strip
    }
    assert len(member["waiting"]) == len(pm["waiting"]) == 2


def test_with_digests_off_the_next_window_is_off(team: Team) -> None:
    body = team.status("max")
    assert body["digest"]["state"] == "scheduled"
    assert body["digest"]["last"] is None
    response = team.api.client.put(
        "/api/orgs/current/comms",
        json={**SETTINGS, "digest": None},
        headers=dev("olive", team.org),
    )
    assert response.status_code == 200, response.text
    body = team.status("max")
    assert body["digest"] == {"state": "off", "last": None, "next": None}


def test_the_next_window_follows_the_clock_into_next_week(team: Team) -> None:
    # Friday 08:00 UTC has passed: the next slot is the following Friday.
    team.api.clock.set(datetime.fromisoformat("2030-01-11T08:00:01+00:00"))
    body = team.status("max")
    assert body["digest"]["next"]["at"] == "2030-01-18T08:00:00Z"
    assert body["digest"]["next"]["period"] == "2030-W03"


def test_the_emails_page_lists_the_outbox_newest_first_with_filters(team: Team) -> None:
    emails = _scene(team)
    response = team.emails()
    assert response.status_code == 200, response.text
    page = OutboxPageOut.model_validate(response.json())
    assert [item.email_id for item in page.items][:2] == [
        emails["failed"].id,
        emails["retrying"].id,
    ]
    assert len(page.items) == 5
    assert "body body" not in response.text
    delivered = team.emails(status="delivered").json()["items"]
    assert sorted(item["recipient"] for item in delivered) == ["ann@example.com", "bob@example.com"]
    packages = team.emails(kind="signoff_package").json()["items"]
    assert {item["status"] for item in packages} == {"retrying", "failed"}
    # The house cursor walks every email once.
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 2} | ({} if cursor is None else {"cursor": cursor})
        body = team.emails(**params).json()
        seen += [item["email_id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(str(e.id) for e in emails.values())
    assert_problem(team.emails(status="lost"), 422)
    assert_problem(team.emails(cursor="not-a-cursor"), 422)


def test_the_emails_page_is_for_pm_and_above(team: Team) -> None:
    _scene(team)
    position = team.api.max_position()
    assert_problem(team.emails("max"), 403)
    assert [d.action for d in team.api.denials_after(position)] == ["comms.outbox"]
    assert team.emails("olive").status_code == 200


def test_outsiders_get_404(team: Team) -> None:
    api = team.api
    _scene(team)
    api.catch_up(CommsProjection())
    other_org = api.new_org("Other")
    for headers in (dev("eve", team.org, Role.ADMIN), dev("olive", other_org)):
        for path in ("comms/status", "emails"):
            response = api.client.get(f"/api/projects/{team.project}/{path}", headers=headers)
            assert_problem(response, 404)
    # The other org's own project shows none of these emails.
    theirs = api.create_project("olive", other_org)
    response = api.client.get(f"/api/projects/{theirs}/emails", headers=dev("olive", other_org))
    assert response.json()["items"] == []


def test_the_audit_feed_shows_email_events_without_bodies(team: Team) -> None:
    emails = _scene(team)
    team.api.catch_up(AuditProjection())
    response = team.api.client.get(
        "/api/audit/list",
        params={"project_id": str(team.project), "limit": 100},
        headers=dev("olive", team.org),
    )
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    email_ids = {str(e.id) for e in emails.values()}
    actions = sorted(i["action"] for i in items if i["target_id"] in email_ids)
    assert actions == sorted(
        ["email.queued"] * 5
        + ["email.delivered"] * 2
        + ["email.deferred", "email.delivery_failed", "email.failed"]
    )
    queued = next(
        i
        for i in items
        if i["action"] == "email.queued" and i["target_id"] == str(emails["ann"].id)
    )
    assert queued["details"]["to"] == "ann@example.com"
    assert queued["details"]["subject"] == "Weekly digest"
    assert "body body" not in response.text


def test_below_pm_a_failure_shows_its_code_never_its_text(team: Team) -> None:
    # A relay's reply quotes the recipient's address: the text is for pm and above only.
    team.api.clock.set(_at(1))
    refused = "550 5.1.1 <client@corp.com>: Recipient address rejected"
    failed = team.queue("client@corp.com", EmailKind.SIGNOFF_PACKAGE)
    failed.failed(code=550, error=refused, stamp=team.stamp())
    team.change(failed)
    retrying = team.queue("other@corp.com", EmailKind.SIGNOFF_PACKAGE)
    retrying.delivery_failed(
        code=None,
        error="config: 535 auth failed for other@corp.com",
        retry_at=_at(2),
        stamp=team.stamp(),
    )
    team.change(retrying)
    member, pm = team.status("max"), team.status("pam")
    assert "corp.com" not in str(member)
    assert [(f["reason"], f["reason_code"]) for f in member["recent_failures"]] == [
        (None, "permanent")
    ]
    assert [(w["reason"], w["reason_code"]) for w in member["waiting"]] == [(None, "config")]
    assert [(f["reason"], f["reason_code"]) for f in pm["recent_failures"]] == [
        (refused, "permanent")
    ]
    assert pm["waiting"][0]["reason_code"] == "config"
    assert "other@corp.com" in pm["waiting"][0]["reason"]
