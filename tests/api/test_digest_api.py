"""Digest preview and manual send over HTTP: the preview is exactly what a send queues, a
retried send queues nothing twice, hostile text comes out escaped, and only pm and above
may send."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from application.digests import MAX_MANUAL_SENDS_PER_DAY
from application.email_links import EmailLinks
from domain.email import Email, LinkName, UnsubscribeLink
from domain.roles import Role
from tests.api.conftest import Api, assert_problem, dev
from tests.support.digests import DURING, configure_org, subscribe

HOSTILE = '<img src=x onerror="alert(1)"> & co'


def _scene(api: Api) -> tuple[UUID, UUID]:
    org = api.new_org()
    configure_org(api.runtime.app, org)
    project = api.create_project("olive", org, "DIG-1")
    api.add_member(project, by="olive", org=org, user="gary", role=Role.GUEST)
    api.add_member(project, by="olive", org=org, user="lena", role=Role.LEAD)
    api.add_member(project, by="olive", org=org, user="pam", role=Role.PM)
    api.clock.set(DURING)
    response = api.client.post(
        f"/api/projects/{project}/raid",
        json={"kind": "risk", "title": HOSTILE},
        headers=dev("olive", org),
    )
    assert response.status_code == 201, response.text
    stage = api.create_stage(project, by="olive", org=org, title="Review")
    api.request_signoff(project, stage, by="olive", org=org, signers=["lena"])
    subscribe(api.runtime.app, org, project, ["ann@example.test", "Ben@Example.test"])
    api.catch_up()
    api.clock.advance(timedelta(minutes=1))  # the week covered ends at the preview's moment
    return org, project


def _preview(api: Api, org: UUID, project: UUID, user: str = "olive") -> dict[str, Any]:
    response = api.client.get(f"/api/projects/{project}/digest/preview", headers=dev(user, org))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_preview_is_exactly_what_a_send_queues(api: Api) -> None:
    org, project = _scene(api)
    preview = _preview(api, org, project)
    assert preview["recipients"] == 2
    assert "Review: waiting on lena" in preview["text"]
    assert "RAID changes (1)" in preview["text"]
    response = api.client.post(
        f"/api/projects/{project}/digest/send",
        headers={**dev("pam", org), "Idempotency-Key": "send-once-1"},
    )
    assert response.status_code == 200, response.text
    sent = response.json()
    assert (sent["recipients"], sent["queued"], sent["already_queued"]) == (2, 2, 0)
    recipients = set()
    for email_id in sent["email_ids"]:
        email: object = api.runtime.app.repository.get(UUID(email_id))
        assert isinstance(email, Email)
        assert (email.subject, email.text, email.html) == (
            preview["subject"],
            preview["text"],
            preview["html"],
        )
        assert email.period is None  # a manual send never uses up the week's digest
        assert email.list_unsubscribe == UnsubscribeLink(project)
        url = EmailLinks.from_config(api.runtime.app.config).urls(email)[LinkName.UNSUBSCRIBE_URL]
        assert "/api/unsubscribe/" in url
        recipients.add(email.to)
    assert recipients == {"ann@example.test", "ben@example.test"}

    # The same request again (a client retry): the same emails, nothing queued twice.
    start = api.max_position()
    again = api.client.post(
        f"/api/projects/{project}/digest/send",
        headers={**dev("pam", org), "Idempotency-Key": "send-once-1"},
    )
    assert again.status_code == 200, again.text
    assert again.json()["email_ids"] == sent["email_ids"]
    assert [r for r in api.rows_after(start) if r.topic.endswith("Email.Queued")] == []

    # A new request is a new send (its own ids).
    other = api.client.post(f"/api/projects/{project}/digest/send", headers=dev("pam", org))
    assert other.status_code == 200, other.text
    assert set(other.json()["email_ids"]).isdisjoint(sent["email_ids"])


def test_hostile_titles_are_escaped_in_the_html(api: Api) -> None:
    org, project = _scene(api)
    preview = _preview(api, org, project)
    assert "<img" not in preview["html"]
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt; &amp; co" in preview["html"]


def test_readers_preview_only_pm_and_above_send(api: Api) -> None:
    org, project = _scene(api)
    for reader in ("gary", "lena"):
        assert _preview(api, org, project, reader)["recipients"] == 2
    for refused in ("gary", "lena"):
        start = api.max_position()
        response = api.client.post(
            f"/api/projects/{project}/digest/send", headers=dev(refused, org)
        )
        assert_problem(response, 403, "forbidden")
        (denial,) = api.denials_after(start)
        assert denial.reason == "missing_permission:digest_send"
    outsider = api.new_org("Other")
    response = api.client.get(
        f"/api/projects/{project}/digest/preview", headers=dev("mallory", outsider)
    )
    assert_problem(response, 404, "not-found")


def test_manual_sends_are_bounded_per_day(api: Api) -> None:
    org, project = _scene(api)
    for _ in range(MAX_MANUAL_SENDS_PER_DAY):
        response = api.client.post(f"/api/projects/{project}/digest/send", headers=dev("pam", org))
        assert response.status_code == 200, response.text
    api.catch_up()
    refused = api.client.post(f"/api/projects/{project}/digest/send", headers=dev("pam", org))
    assert_problem(refused, 409, "conflict")
    # A day later the window has moved on.
    api.clock.advance(timedelta(days=1, minutes=1))
    again = api.client.post(f"/api/projects/{project}/digest/send", headers=dev("pam", org))
    assert again.status_code == 200, again.text


def test_an_archived_project_can_be_previewed_but_not_sent(api: Api) -> None:
    org, project = _scene(api)
    archived = api.client.post(f"/api/projects/{project}/archive", headers=dev("olive", org))
    assert archived.status_code == 200, archived.text
    assert _preview(api, org, project)["recipients"] == 2
    start = api.max_position()
    refused = api.client.post(f"/api/projects/{project}/digest/send", headers=dev("olive", org))
    assert_problem(refused, 409, "conflict")
    assert api.rows_after(start) == []
