"""The outbox checks a package email's signing link at send time (decision 0026).

A package email may wait (quiet hours, the daily cap, a retry) and may be sent by another
process than the one that queued it. Its link is derived there from the link key and is worth
sending only if the round would accept it: a dead link (expired, revoked by a re-invite, round
closed) cancels the email, and a process with another key refuses it as a configuration error
instead of delivering a link that answers "signing link not found". Real database, real
loopback relay.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from adapters.mail.smtp import SmtpMailer, parse_smtp_url
from adapters.postgres.database import DatabaseUrl
from application.app import Teaim
from application.config import AppConfig
from application.signoff_package import PackageRequest, SentPackage
from domain.email import Email, EmailStatus
from tests.support.apps import open_app, seed_org
from tests.support.clocks import SettableClock
from tests.support.contexts import public, service
from tests.support.outbox import Outbox
from tests.support.secrets import TokenSecrets
from tests.support.smtp_server import SmtpRelay, smtp_relay

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
OTHER_KEY = b"another-hosts-link-key:" + b"o" * 32


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
        app.update_org_settings(ctx=service(org), daily_email_cap=0)
        yield Outbox.build(app, clock, database_url, org, project, mailer)
    finally:
        mailer.close()
        app.close()


def _send(outbox: Outbox, *, expires_in: timedelta | None = None) -> tuple[UUID, SentPackage]:
    ctx = service(outbox.org)
    stage = outbox.app.create_stage(ctx=ctx, project_id=outbox.project, title="Design", order=1)
    sent = outbox.app.send_signoff_package(
        ctx=ctx,
        project_id=outbox.project,
        request=PackageRequest(stage_id=stage.id, message="Please sign", recipient="c@example.com"),
        expires_in=expires_in,
    )
    return stage.id, sent


def _defer_by_quiet_hours(outbox: Outbox) -> None:
    outbox.app.update_org_settings(
        ctx=service(outbox.org), timezone="Europe/Berlin", quiet_hours=("22:00", "07:00")
    )
    outbox.clock.set(datetime(2026, 11, 26, 22, 30, tzinfo=UTC))  # 23:30 in Berlin


def _release(outbox: Outbox, email_id: UUID, at: datetime) -> None:
    outbox.clock.set(at)
    outbox.app.release_email(
        org_id=outbox.org, email_id=email_id, project_id=outbox.project, now=at, cause="t"
    )
    outbox.run()


def _end_of_quiet_hours(outbox: Outbox, email_id: UUID) -> None:
    _release(outbox, email_id, datetime(2026, 11, 27, 6, 0, tzinfo=UTC))  # 07:00 in Berlin


def _cancel_reason(outbox: Outbox, email_id: UUID) -> str:
    for stored in outbox.app.recorder.select_events(email_id):
        event = outbox.app.mapper.to_domain_event(stored)
        if isinstance(event, Email.Cancelled):
            return event.reason
    raise AssertionError("the email was not cancelled")


def _emailed_token(relay: SmtpRelay) -> str:
    text = relay.sink.messages[-1].get_body(("plain",))
    assert text is not None
    found = re.findall(r"/sign#token=([0-9a-f]{32}\.[A-Za-z0-9_-]+)", text.get_content())
    assert len(found) == 1
    return str(found[0])


def _deferred(outbox: Outbox, email_id: UUID) -> None:
    outbox.run()
    assert outbox.email(email_id).status is EmailStatus.DEFERRED


def test_a_worker_with_another_link_key_sends_nothing_and_the_right_key_then_delivers(
    outbox: Outbox, relay: SmtpRelay, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    stage, sent = _send(outbox)
    other = Teaim(
        DatabaseUrl.parse(database_url).eventsourcing_env(),
        clock=outbox.clock,
        secrets=TokenSecrets(),
        audit_log=None,
        config=AppConfig(unsubscribe_key=OTHER_KEY),  # another host's DATA_DIR
    )
    try:
        worker = Outbox.build(
            other, outbox.clock, database_url, outbox.org, outbox.project, outbox.reactor.mailer
        )
        with caplog.at_level(logging.ERROR, logger="teaim.outbox"):
            worker.run()
    finally:
        other.close()

    assert relay.sink.accepted == []
    waiting = outbox.email(sent.email_id)
    assert waiting.status is EmailStatus.RETRYING
    assert waiting.last_error is not None
    assert waiting.last_error.startswith("config:")
    assert "link key" in waiting.last_error
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert any(str(outbox.org) in r.getMessage() for r in errors)

    assert waiting.not_before is not None
    _release(outbox, sent.email_id, waiting.not_before)  # the right key, after the backoff
    assert outbox.email(sent.email_id).status is EmailStatus.DELIVERED
    token = _emailed_token(relay)
    assert token == sent.token
    outbox.app.sign_with_link(token=token, name="Client", comment="", ctx=public())
    signoff = outbox.app.get_signoff(
        ctx=service(outbox.org), project_id=outbox.project, stage_id=stage
    )
    assert signoff is not None
    assert "email:c@example.com" in signoff.signatures


def test_a_package_deferred_past_its_links_expiry_is_cancelled_unsent(
    outbox: Outbox, relay: SmtpRelay
) -> None:
    _defer_by_quiet_hours(outbox)
    _stage, sent = _send(outbox, expires_in=timedelta(hours=1))
    _deferred(outbox, sent.email_id)
    _end_of_quiet_hours(outbox, sent.email_id)  # 7.5 hours later

    assert outbox.email(sent.email_id).status is EmailStatus.CANCELLED
    assert _cancel_reason(outbox, sent.email_id) == "link_expired"
    assert relay.sink.accepted == []


def test_a_re_invite_to_the_same_address_cancels_the_waiting_package(
    outbox: Outbox, relay: SmtpRelay
) -> None:
    _defer_by_quiet_hours(outbox)
    stage, sent = _send(outbox)
    _deferred(outbox, sent.email_id)
    outbox.app.invite_external_signer(
        ctx=service(outbox.org), project_id=outbox.project, stage_id=stage, email="c@example.com"
    )
    _end_of_quiet_hours(outbox, sent.email_id)

    assert outbox.email(sent.email_id).status is EmailStatus.CANCELLED
    assert _cancel_reason(outbox, sent.email_id) == "link_revoked"
    assert relay.sink.accepted == []


def _reject_by_another_signer(outbox: Outbox, stage: UUID) -> None:
    other = outbox.app.invite_external_signer(
        ctx=service(outbox.org), project_id=outbox.project, stage_id=stage, email="d@example.com"
    )
    outbox.app.reject_with_link(token=other.token, name="D", reason="Not ready", ctx=public())


def _reopen(outbox: Outbox, stage: UUID) -> None:
    outbox.app.reopen_stage(
        ctx=service(outbox.org), project_id=outbox.project, stage_id=stage, reason="Redo"
    )


@pytest.mark.parametrize(
    "close", [_reject_by_another_signer, _reopen], ids=["rejected", "reopened"]
)
def test_a_package_whose_round_closed_meanwhile_is_cancelled_unsent(
    outbox: Outbox, relay: SmtpRelay, close: Callable[[Outbox, UUID], None]
) -> None:
    _defer_by_quiet_hours(outbox)
    stage, sent = _send(outbox)
    _deferred(outbox, sent.email_id)
    close(outbox, stage)
    _end_of_quiet_hours(outbox, sent.email_id)

    assert outbox.email(sent.email_id).status is EmailStatus.CANCELLED
    assert _cancel_reason(outbox, sent.email_id) == "round_closed"
    assert relay.sink.accepted == []


def test_a_package_with_a_live_link_still_goes_after_quiet_hours(
    outbox: Outbox, relay: SmtpRelay
) -> None:
    _defer_by_quiet_hours(outbox)
    _stage, sent = _send(outbox, expires_in=timedelta(hours=9))  # outlives the wait
    _deferred(outbox, sent.email_id)
    _end_of_quiet_hours(outbox, sent.email_id)

    assert outbox.email(sent.email_id).status is EmailStatus.DELIVERED
    assert _emailed_token(relay) == sent.token


def test_a_package_whose_link_was_used_from_the_manual_copy_is_cancelled_unsent(
    outbox: Outbox, relay: SmtpRelay
) -> None:
    _defer_by_quiet_hours(outbox)
    _stage, sent = _send(outbox)
    _deferred(outbox, sent.email_id)
    # The pm copied the link from the answer and the client signed with it already.
    outbox.app.sign_with_link(token=sent.token, name="Client", comment="", ctx=public())
    _end_of_quiet_hours(outbox, sent.email_id)

    assert outbox.email(sent.email_id).status is EmailStatus.CANCELLED
    assert _cancel_reason(outbox, sent.email_id) == "link_used"
    assert relay.sink.accepted == []
