"""The outbox end to end: queued emails through the reactor to a real SMTP relay on loopback.

Real parts: the event store on PostgreSQL, the reactor runner, the SMTP mailer over STARTTLS
with auth, aiosmtpd reading what arrived. The clock is frozen so quiet hours and caps are
decided at known instants.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from pydantic import SecretStr

from adapters.mail.file_sink import FileSinkMailer
from adapters.mail.smtp import SmtpMailer, parse_smtp_url
from application.email_links import EmailLinks
from application.signoff_package import PackageRequest
from domain.email import EmailKind, EmailStatus, LinkName
from domain.errors import InvalidValueError
from domain.mail_quota import MailQuota, mail_quota_id
from domain.stamps import Stamp
from interfaces.mailer import build_mailer
from interfaces.settings import Settings
from tests.support.apps import open_app, seed_org
from tests.support.clocks import SettableClock
from tests.support.contexts import service
from tests.support.legacy_addresses import legacy_email, legacy_external
from tests.support.outbox import MAIL_DOMAIN, Outbox
from tests.support.reactors import Crash
from tests.support.smtp_server import SmtpRelay, smtp_relay

# Thursday 2026-11-26 10:00 UTC: 11:00 in Berlin, 02:00 in Los Angeles.
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


@pytest.fixture
def relay() -> Iterator[SmtpRelay]:
    with smtp_relay() as running:
        yield running


@pytest.fixture
def outbox(database_url: str, relay: SmtpRelay) -> Iterator[Outbox]:
    clock = SettableClock(NOW)
    app = open_app(database_url, clock=clock)
    mailer = SmtpMailer(parse_smtp_url(relay.url(), timeout=5.0), relay.client_context)
    try:
        org, project, _owner = seed_org(app)
        # No cap unless a test sets one: the default (20) is not what these tests are about.
        app.update_org_settings(ctx=service(org), daily_email_cap=0)
        yield Outbox.build(app, clock, database_url, org, project, mailer)
    finally:
        mailer.close()
        app.close()


def test_a_queued_email_is_delivered_with_its_headers_and_both_parts(
    outbox: Outbox, relay: SmtpRelay
) -> None:
    email = outbox.queue()
    outbox.run()

    (received,) = relay.sink.messages
    assert received["Message-ID"] == f"<{email.id}@{MAIL_DOMAIN}>"
    assert received["To"] == "pat@example.com"
    assert received["From"] == "TEAIM <teaim@teaim.localhost>"
    assert received["Subject"] == "Weekly digest: Olive"
    assert received["Date"] == "Thu, 26 Nov 2026 10:00:00 +0000"
    plain, html = received.iter_parts()
    assert plain.get_content_type() == "text/plain"
    assert html.get_content_type() == "text/html"
    assert "<p>Nothing changed this week.</p>" in html.get_content()
    # Unfolded, plain URL headers, exactly as RFC 8058 wants them.
    raw_head = relay.sink.accepted[0].split(b"\r\n\r\n", 1)[0].decode("ascii").split("\r\n")
    # The link is derived from the key at send time (the email stores a reference only).
    unsubscribe = EmailLinks.from_config(outbox.app.config).urls(email)[LinkName.UNSUBSCRIBE_URL]
    assert unsubscribe.startswith(f"{outbox.app.config.public_base_url}/api/unsubscribe/")
    assert f"List-Unsubscribe: <{unsubscribe}>" in raw_head
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in raw_head

    delivered = outbox.email(email.id)
    assert delivered.status is EmailStatus.DELIVERED
    assert delivered.attempts == 1
    assert outbox.events(email.id) == ["Queued", "Delivered"]
    assert outbox.app.delivered_on(outbox.org, "pat@example.com", NOW.date()) == 1


def test_a_temporary_refusal_is_retried_after_its_backoff_and_then_delivered(
    outbox: Outbox, relay: SmtpRelay
) -> None:
    relay.sink.data_replies.append("451 4.3.0 try again later")
    email = outbox.queue()
    outbox.run()

    waiting = outbox.email(email.id)
    assert waiting.status is EmailStatus.RETRYING
    assert waiting.not_before == NOW + timedelta(seconds=60)  # base, jitter pinned to 1.0
    assert waiting.last_error is not None
    assert waiting.last_error.startswith("temporary: 451")
    assert relay.sink.messages == []

    # Not due yet: the release does nothing, and neither does the reactor.
    assert (
        outbox.app.release_email(
            org_id=outbox.org, email_id=email.id, project_id=outbox.project, now=NOW, cause="t"
        )
        == 0
    )
    outbox.clock.set(NOW + timedelta(seconds=61))
    assert outbox.app.release_email(
        org_id=outbox.org,
        email_id=email.id,
        project_id=outbox.project,
        now=outbox.clock.at,
        cause="t",
    )
    outbox.run()

    assert relay.sink.message_ids() == [email.message_id]
    assert outbox.events(email.id) == ["Queued", "DeliveryFailed", "Released", "Delivered"]
    assert outbox.email(email.id).attempts == 2


def test_a_permanent_refusal_fails_the_email_and_it_is_never_tried_again(
    outbox: Outbox, relay: SmtpRelay
) -> None:
    relay.sink.rcpt_replies["gone@example.com"] = "550 5.1.1 no such user"
    email = outbox.queue("gone@example.com")
    outbox.run()

    failed = outbox.email(email.id)
    assert failed.status is EmailStatus.FAILED
    assert failed.last_error is not None
    assert "550" in failed.last_error
    outbox.clock.set(NOW + timedelta(days=1))
    assert (
        outbox.app.release_email(
            org_id=outbox.org,
            email_id=email.id,
            project_id=outbox.project,
            now=outbox.clock.at,
            cause="t",
        )
        == 0
    )
    del relay.sink.rcpt_replies["gone@example.com"]  # even a relay that would take it now
    outbox.replay_from_start()
    assert relay.sink.messages == []
    assert outbox.events(email.id) == ["Queued", "Failed"]


def test_a_configuration_error_waits_with_backoff_and_never_fails_the_email_at_once(
    outbox: Outbox, relay: SmtpRelay
) -> None:
    outbox.reactor.mailer = SmtpMailer(
        parse_smtp_url(relay.url(password="wrong"), timeout=5.0), relay.client_context
    )
    email = outbox.queue()
    outbox.run()

    waiting = outbox.email(email.id)
    assert waiting.status is EmailStatus.RETRYING
    assert waiting.last_error is not None
    assert waiting.last_error.startswith("config:")


def test_quiet_hours_defer_to_the_end_of_the_window_in_the_orgs_timezone(
    outbox: Outbox, relay: SmtpRelay
) -> None:
    outbox.app.update_org_settings(
        ctx=service(outbox.org), timezone="Europe/Berlin", quiet_hours=("22:00", "07:00")
    )
    late = datetime(2026, 11, 26, 22, 30, tzinfo=UTC)  # 23:30 in Berlin
    outbox.clock.set(late)
    email = outbox.queue()
    outbox.run()

    deferred = outbox.email(email.id)
    assert deferred.status is EmailStatus.DEFERRED
    assert deferred.defer_reason == "quiet_hours"
    assert deferred.not_before == datetime(2026, 11, 27, 6, 0, tzinfo=UTC)  # 07:00 Berlin
    assert relay.sink.accepted == []

    outbox.clock.set(datetime(2026, 11, 27, 6, 0, tzinfo=UTC))
    outbox.app.release_email(
        org_id=outbox.org,
        email_id=email.id,
        project_id=outbox.project,
        now=outbox.clock.at,
        cause="t",
    )
    outbox.run()
    assert relay.sink.message_ids() == [email.message_id]


def test_the_daily_cap_defers_the_excess_to_the_next_org_local_midnight(
    outbox: Outbox, relay: SmtpRelay
) -> None:
    outbox.app.update_org_settings(
        ctx=service(outbox.org), timezone="America/Los_Angeles", daily_email_cap=2
    )
    noon = datetime(2026, 11, 26, 20, 0, tzinfo=UTC)  # 12:00 in Los Angeles
    outbox.clock.set(noon)
    first, second, third = (outbox.queue() for _ in range(3))
    other = outbox.queue("sam@example.com")  # the cap is per recipient
    outbox.run()

    assert relay.sink.message_ids() == [first.message_id, second.message_id, other.message_id]
    capped = outbox.email(third.id)
    assert capped.status is EmailStatus.DEFERRED
    assert capped.defer_reason == "daily_cap"
    assert capped.not_before == datetime(2026, 11, 27, 8, 0, tzinfo=UTC)  # midnight in LA
    local_day = date(2026, 11, 26)
    assert outbox.app.delivered_on(outbox.org, "pat@example.com", local_day) == 2

    outbox.clock.set(datetime(2026, 11, 27, 8, 0, tzinfo=UTC))
    outbox.app.release_email(
        org_id=outbox.org,
        email_id=third.id,
        project_id=outbox.project,
        now=outbox.clock.at,
        cause="t",
    )
    outbox.run()
    assert relay.sink.message_ids()[-1] == third.message_id
    assert outbox.app.delivered_on(outbox.org, "pat@example.com", local_day) == 2
    next_day = local_day + timedelta(days=1)
    assert outbox.app.delivered_on(outbox.org, "pat@example.com", next_day) == 1


def test_a_crash_between_acceptance_and_the_record_resends_the_same_message_once(
    outbox: Outbox, relay: SmtpRelay
) -> None:
    email = outbox.queue()
    outbox.reactor.crash_before_record = True
    with pytest.raises(Crash):
        outbox.run()
    assert relay.sink.message_ids() == [email.message_id]  # the relay has it...
    assert outbox.events(email.id) == ["Queued"]  # ...the log does not

    outbox.run()  # the restarted process

    # At least once, with a stable identity: the same Message-ID and the same bytes again,
    # which a relay (or client) that deduplicates on Message-ID drops.
    assert relay.sink.message_ids() == [email.message_id, email.message_id]
    assert relay.sink.accepted[0] == relay.sink.accepted[1]
    assert outbox.events(email.id) == ["Queued", "Delivered"]
    assert outbox.app.delivered_on(outbox.org, "pat@example.com", NOW.date()) == 1

    outbox.replay_from_start()  # a third run, from the very start of the log
    assert len(relay.sink.accepted) == 2
    assert outbox.events(email.id) == ["Queued", "Delivered"]


def test_a_crash_after_the_record_sends_nothing_again(outbox: Outbox, relay: SmtpRelay) -> None:
    email = outbox.queue()
    outbox.reactor.crash_after_record = True
    with pytest.raises(Crash):
        outbox.run()

    outbox.run()

    assert relay.sink.message_ids() == [email.message_id]  # one DATA, ever
    assert outbox.events(email.id) == ["Queued", "Delivered"]
    quota: object = outbox.app.repository.get(
        mail_quota_id(outbox.org, "pat@example.com", NOW.date())
    )
    assert isinstance(quota, MailQuota)
    assert quota.delivered == 1


def test_without_a_relay_configured_mail_lands_in_the_file_sink(
    outbox: Outbox, tmp_path: Path
) -> None:
    mailer = build_mailer(Settings(data_dir=tmp_path))
    assert isinstance(mailer, FileSinkMailer)
    outbox.reactor.mailer = mailer
    email = outbox.queue()
    outbox.run()

    written = tmp_path / "mail" / f"{email.id}.eml"
    assert f"Message-ID: {email.message_id}".encode() in written.read_bytes()
    assert outbox.email(email.id).status is EmailStatus.DELIVERED


def test_an_internationalised_address_fails_without_a_send(
    outbox: Outbox, relay: SmtpRelay
) -> None:
    # Refused at input today (a 422); one recorded under the looser rule of its time still
    # fails for good at send time, without a send.
    with pytest.raises(InvalidValueError, match="non-ASCII"):
        outbox.queue("j\u00f6rg@example.de")
    email = legacy_email(outbox.app, _stamp(outbox), "j\u00f6rg@example.de")
    outbox.run()

    failed = outbox.email(email.id)
    assert failed.status is EmailStatus.FAILED
    assert failed.last_error is not None
    assert "SMTPUTF8" in failed.last_error
    assert relay.sink.accepted == []


def test_a_private_ca_from_smtp_ca_file_is_trusted(
    outbox: Outbox, relay: SmtpRelay, tmp_path: Path
) -> None:
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(
        "".join(
            ssl.DER_cert_to_PEM_cert(der)
            for der in relay.client_context.get_ca_certs(binary_form=True)
        )
    )
    settings = Settings(data_dir=tmp_path, smtp_url=SecretStr(relay.url()), smtp_ca_file=ca_file)
    mailer = build_mailer(settings)
    assert isinstance(mailer, SmtpMailer)
    outbox.reactor.mailer = mailer
    try:
        email = outbox.queue()
        outbox.run()
    finally:
        mailer.close()
    assert relay.sink.message_ids() == [email.message_id]


# Withdrawn digests, and the package email under quiet hours and the cap ------------------


def _defer_by_quiet_hours(outbox: Outbox) -> None:
    outbox.app.update_org_settings(
        ctx=service(outbox.org), timezone="Europe/Berlin", quiet_hours=("22:00", "07:00")
    )
    outbox.clock.set(datetime(2026, 11, 26, 22, 30, tzinfo=UTC))  # 23:30 in Berlin


def _release(outbox: Outbox, email_id: UUID) -> None:
    outbox.clock.set(datetime(2026, 11, 27, 6, 0, tzinfo=UTC))  # 07:00 in Berlin
    outbox.app.release_email(
        org_id=outbox.org,
        email_id=email_id,
        project_id=outbox.project,
        now=outbox.clock.at,
        cause="t",
    )
    outbox.run()


def test_a_digest_waiting_out_quiet_hours_is_withdrawn_when_its_recipient_leaves_the_list(
    outbox: Outbox, relay: SmtpRelay
) -> None:
    _defer_by_quiet_hours(outbox)
    gone, kept = outbox.queue("gone@example.com"), outbox.queue("kept@example.com")
    outbox.run()
    assert outbox.email(gone.id).status is EmailStatus.DEFERRED
    outbox.app.remove_digest_recipient(
        ctx=service(outbox.org), project_id=outbox.project, address="gone@example.com"
    )
    _release(outbox, gone.id)
    _release(outbox, kept.id)

    assert outbox.email(gone.id).status is EmailStatus.CANCELLED
    assert "Cancelled" in outbox.events(gone.id)
    assert relay.sink.message_ids() == [kept.message_id]


def test_a_digest_of_a_project_archived_meanwhile_is_withdrawn(
    outbox: Outbox, relay: SmtpRelay
) -> None:
    _defer_by_quiet_hours(outbox)
    email = outbox.queue()
    outbox.run()
    outbox.app.archive_project(ctx=service(outbox.org), project_id=outbox.project)
    _release(outbox, email.id)

    assert outbox.email(email.id).status is EmailStatus.CANCELLED
    assert relay.sink.accepted == []


def _send_package(outbox: Outbox, recipient: str) -> UUID:
    ctx = service(outbox.org)
    stage = outbox.app.create_stage(ctx=ctx, project_id=outbox.project, title="Design", order=1)
    sent = outbox.app.send_signoff_package(
        ctx=ctx,
        project_id=outbox.project,
        request=PackageRequest(stage_id=stage.id, message="Please sign", recipient=recipient),
    )
    return sent.email_id


def test_the_sign_off_package_email_waits_out_quiet_hours_and_carries_its_link(
    outbox: Outbox, relay: SmtpRelay
) -> None:
    _defer_by_quiet_hours(outbox)
    email_id = _send_package(outbox, "client@example.com")  # not on any digest list
    outbox.run()

    waiting = outbox.email(email_id)
    assert (waiting.status, waiting.defer_reason) == (EmailStatus.DEFERRED, "quiet_hours")
    assert waiting.not_before == datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
    assert relay.sink.accepted == []

    _release(outbox, email_id)
    assert relay.sink.message_ids() == [waiting.message_id]
    text = relay.sink.messages[0].get_body(("plain",))
    assert text is not None
    assert "/sign#token=" in text.get_content()


def test_the_sign_off_package_email_counts_against_the_daily_cap(
    outbox: Outbox, relay: SmtpRelay
) -> None:
    outbox.app.update_org_settings(
        ctx=service(outbox.org), timezone="America/Los_Angeles", daily_email_cap=1
    )
    outbox.clock.set(datetime(2026, 11, 26, 20, 0, tzinfo=UTC))  # noon in Los Angeles
    digest = outbox.queue("client@example.com")
    outbox.run()
    package = _send_package(outbox, "client@example.com")
    outbox.run()

    assert relay.sink.message_ids() == [digest.message_id]
    capped = outbox.email(package)
    assert (capped.status, capped.defer_reason) == (EmailStatus.DEFERRED, "daily_cap")
    assert capped.not_before == datetime(2026, 11, 27, 8, 0, tzinfo=UTC)  # midnight in LA


def test_an_address_the_email_library_cannot_parse_fails_without_halting_the_org(
    outbox: Outbox, relay: SmtpRelay
) -> None:
    # `a@[b.com` passed the address check of its time and made building the message raise;
    # the email behind it must still go. Today's rule refuses it at input, so the test writes
    # it as the log of that time holds it.
    with pytest.raises(InvalidValueError):
        outbox.queue("a@[b.com")
    poison = legacy_email(outbox.app, _stamp(outbox), "a@[b.com")
    good = outbox.queue()
    outbox.run()

    failed = outbox.email(poison.id)
    assert failed.status is EmailStatus.FAILED
    assert failed.last_error is not None
    assert "cannot be built" in failed.last_error
    assert relay.sink.message_ids() == [good.message_id]


@pytest.mark.parametrize(
    "legacy", ["a:victim@corp.com;", "b<victim@corp.com", "(x)victim@corp.com", "a@[b.com"]
)
def test_a_legacy_address_that_names_another_mailbox_is_failed_unsent_and_removable(
    outbox: Outbox, relay: SmtpRelay, legacy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A digest to an external recipient the looser rule of its time let on the list: a relay
    # would have delivered it to victim@corp.com. The list still loads, the email fails for
    # good without reaching the relay, the org's other mail goes, and the owner can take the
    # entry off.
    with pytest.raises(InvalidValueError):
        outbox.queue(legacy)
    rcpt_seen: list[str] = []
    handle_rcpt = relay.sink.handle_RCPT

    async def spy(server: Any, session: Any, envelope: Any, address: str, opts: list[str]) -> str:
        rcpt_seen.append(address)
        return await handle_rcpt(server, session, envelope, address, opts)

    monkeypatch.setattr(relay.sink, "handle_RCPT", spy)
    legacy_external(outbox.app, _stamp(outbox), outbox.project, legacy)
    stale = legacy_email(outbox.app, _stamp(outbox), legacy, kind=EmailKind.DIGEST)
    good = outbox.queue()
    outbox.run()

    failed = outbox.email(stale.id)
    assert failed.status is EmailStatus.FAILED
    assert failed.last_error is not None
    assert relay.sink.message_ids() == [good.message_id]
    assert rcpt_seen == ["pat@example.com"]
    overview = outbox.app.digest_subscriptions(ctx=service(outbox.org), project_id=outbox.project)
    assert overview.recipients is not None
    assert legacy in [s.address for s in overview.recipients]
    outbox.app.remove_digest_recipient(
        ctx=service(outbox.org), project_id=outbox.project, address=legacy
    )
    overview = outbox.app.digest_subscriptions(ctx=service(outbox.org), project_id=outbox.project)
    assert overview.recipients is not None
    assert legacy not in [s.address for s in overview.recipients]


def _stamp(outbox: Outbox) -> Stamp:
    return Stamp(outbox.org, "service:test", "test", outbox.clock.at, project_id=outbox.project)
