"""No secret link ever reaches the event store (security review of issue 9, decision 0026).

The sign-off package's signing token and each digest recipient's unsubscribe token are derived
from the link key when the outbox builds the message: the stored email holds a placeholder and
a reference. Checked by scanning every stored event (and what auditors read: the raw replay and
the feed export) after a package send and a digest send, and end to end: the link in the
message a real SMTP relay received still signs, and the delivered digest's List-Unsubscribe
link still unsubscribes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from uuid import UUID

import psycopg
import pytest

from adapters.mail.smtp import SmtpMailer, parse_smtp_url
from application.unsubscribe_tokens import UnsubscribeTarget, unsubscribe_token
from domain.roles import Role
from domain.signoff import SignOff
from projections.audit import AuditProjection
from projections.digest_recipients import DigestRecipientsProjection
from tests.api.conftest import Api, dev
from tests.api.test_signoff_package import _setup
from tests.support.contexts import service
from tests.support.digests import DURING, configure_org, subscribe
from tests.support.outbox import Outbox
from tests.support.smtp_server import SmtpRelay, smtp_relay

CLIENT = "client@example.com"
SUBSCRIBERS = ["ann@example.test", "ben@example.test"]
ONE_CLICK = b"List-Unsubscribe=One-Click"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
# Any signing link or unsubscribe link, whatever its token.
LINK = re.compile(r"sign#token=|/api/unsubscribe/[A-Za-z0-9_-]")


@pytest.fixture
def relay() -> Iterator[SmtpRelay]:
    with smtp_relay() as running:
        yield running


def _no_quiet_hours_or_cap(api: Api, org: UUID) -> None:
    api.runtime.app.update_org_settings(ctx=service(org), quiet_hours=None, daily_email_cap=0)


def _send_package(api: Api) -> tuple[UUID, UUID, dict[str, str]]:
    s = _setup(api)
    _no_quiet_hours_or_cap(api, s.org)
    response = api.client.post(s.url("send"), json=s.body(recipient=CLIENT), headers=s.h)
    assert response.status_code == 201, response.text
    sent: dict[str, str] = response.json()
    assert sent["signing_url"].endswith(f"/sign#token={sent['token']}")  # shown once
    return s.org, s.project, sent


def _send_digest(api: Api, org: UUID, project: UUID) -> list[str]:
    configure_org(api.runtime.app, org)
    subscribe(api.runtime.app, org, project, SUBSCRIBERS)
    api.catch_up(DigestRecipientsProjection())
    preview = api.client.get(f"/api/projects/{project}/digest/preview", headers=dev("olive", org))
    assert preview.status_code == 200, preview.text
    assert not LINK.search(preview.text)  # the preview shows no live token either
    response = api.client.post(f"/api/projects/{project}/digest/send", headers=dev("olive", org))
    assert response.status_code == 200, response.text
    assert response.json()["queued"] == len(SUBSCRIBERS)
    key = api.runtime.app.config.unsubscribe_key
    return [unsubscribe_token(key, UnsubscribeTarget(org, project, a)) for a in SUBSCRIBERS]


def _stored_events(api: Api) -> list[str]:
    with psycopg.connect(api.database_url) as conn:
        rows = conn.execute("SELECT state FROM teaim_events ORDER BY notification_id").fetchall()
    return [bytes(state).decode("utf-8") for (state,) in rows]


def test_no_signing_or_unsubscribe_token_is_in_the_event_store_or_what_auditors_read(
    api: Api,
) -> None:
    org, project, sent = _send_package(api)
    token = sent["token"]
    unsubscribe_tokens = _send_digest(api, org, project)
    secrets = [token, token.partition(".")[2], *unsubscribe_tokens]

    stored = _stored_events(api)
    assert len(stored) > 20
    # Really scanned: the stored bodies are there (a RAID title the package lists, the
    # digests' text), each with the placeholder where its link goes.
    assert any("Vendor slips" in s and "[[teaim-link:signing_url]]" in s for s in stored)
    assert sum("weekly digest" in s for s in stored) >= len(SUBSCRIBERS)
    for state in stored:
        assert not LINK.search(state), state[:300]
        for secret in secrets:
            assert secret not in state

    # What an org auditor reads: the raw replay of the project, and the feed's export.
    owner = dev("olive", org)
    assert api.client.post("/api/org/auditors", json={"user_id": "ada"}, headers=owner).is_success
    ada = dev("ada", org, Role.GUEST)
    replay = api.client.get("/api/audit/replay", params={"project_id": str(project)}, headers=ada)
    assert replay.status_code == 200, replay.text
    assert "Email.Queued" in replay.text or "email" in replay.text.lower()
    api.catch_up(AuditProjection())
    now = api.clock.now()
    export = api.client.get(
        "/api/audit/export",
        params={
            "format": "ndjson",
            "project_id": str(project),
            "from": (now - timedelta(days=30)).isoformat(),
            "to": (now + timedelta(days=1)).isoformat(),
        },
        headers=owner,
    )
    assert export.status_code == 200, export.text
    assert "signoff.package_sent" in export.text
    for body in (replay.text, export.text):
        assert not LINK.search(body)
        for secret in secrets:
            assert secret not in body


def test_the_emailed_signing_link_signs_after_delivery_over_smtp(
    api: Api, relay: SmtpRelay
) -> None:
    org, project, sent = _send_package(api)
    mailer = SmtpMailer(parse_smtp_url(relay.url(), timeout=5.0), relay.client_context)
    try:
        outbox = Outbox.build(api.runtime.app, api.clock, api.database_url, org, project, mailer)
        outbox.run()
    finally:
        mailer.close()

    (message,) = relay.sink.messages
    assert message["To"] == CLIENT
    plain, html = (message.get_body((kind,)) for kind in ("plain", "html"))
    assert plain is not None
    assert html is not None
    (token,) = set(re.findall(r"/sign#token=([0-9a-f]{32}\.[A-Za-z0-9_-]+)", plain.get_content()))
    assert f'href="{sent["signing_url"]}"' in html.get_content()
    assert token == sent["token"]  # the link the answer showed is the one the email carries

    signed = api.client.post(
        "/api/public/signing/sign", json={"name": "Client"}, headers={"X-Signing-Token": token}
    )
    assert signed.status_code == 200, signed.text
    signoff: object = api.runtime.app.repository.get(UUID(sent["id"]))
    assert isinstance(signoff, SignOff)
    assert signoff.is_complete()


def test_the_list_unsubscribe_link_of_a_delivered_digest_unsubscribes(
    api: Api, relay: SmtpRelay
) -> None:
    org = api.new_org()
    project = api.create_project("olive", org, "SEC-1")
    _no_quiet_hours_or_cap(api, org)
    api.clock.set(DURING)
    _send_digest(api, org, project)
    api.catch_up()
    mailer = SmtpMailer(parse_smtp_url(relay.url(), timeout=5.0), relay.client_context)
    try:
        outbox = Outbox.build(api.runtime.app, api.clock, api.database_url, org, project, mailer)
        outbox.run()
    finally:
        mailer.close()

    by_recipient = {str(m["To"]): m for m in relay.sink.messages}
    assert sorted(by_recipient) == SUBSCRIBERS
    header = str(by_recipient["ann@example.test"]["List-Unsubscribe"])
    assert by_recipient["ann@example.test"]["List-Unsubscribe-Post"] == ONE_CLICK.decode()
    url = header.removeprefix("<").removesuffix(">")
    base = api.runtime.app.config.public_base_url
    assert url.startswith(f"{base}/api/unsubscribe/")
    assert url != str(by_recipient["ben@example.test"]["List-Unsubscribe"])[1:-1]

    answer = api.client.post(url.removeprefix(base), headers=FORM, content=ONE_CLICK)
    assert answer.status_code == 200, answer.text
    api.catch_up(DigestRecipientsProjection())
    with psycopg.connect(api.database_url) as conn:
        left = conn.execute(
            "SELECT address FROM digest_recipients WHERE project_id = %s ORDER BY address",
            (project,),
        ).fetchall()
    assert [a for (a,) in left] == ["ben@example.test"]
