"""The outbox's email: what queueing holds, and a life that ends once (delivered, failed,
cancelled)."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.email import (
    MAX_ATTEMPTS,
    MAX_BODY_CHARS,
    Email,
    EmailKind,
    EmailStatus,
    LinkName,
    SigningLink,
    UnsubscribeLink,
    digest_email_id,
    link_placeholder,
    message_id_for,
    parse_link_ref,
)
from domain.errors import InvalidValueError, RuleViolationError
from tests.support.clocks import EPOCH
from tests.unit.conftest import make_stamp


def queued(**overrides: object) -> Email:
    project_id = uuid4()
    fields: dict[str, object] = {
        "email_id": digest_email_id(project_id, "Ann@Example.com", "2026-W48"),
        "kind": EmailKind.DIGEST,
        "to": " Ann@Example.com ",
        "subject": "Weekly digest",
        "text": "hello",
        "html": "<p>hello</p>",
        "mail_domain": "mail.example.test",
        "stamp": make_stamp(project_id=project_id),
        "links": {LinkName.UNSUBSCRIBE_URL: UnsubscribeLink(project_id)},
        "period": "2026-W48",
    }
    fields.update(overrides)
    return Email.queue(**fields)  # type: ignore[arg-type]


def test_queueing_holds_the_whole_message_and_a_stable_message_id() -> None:
    email = queued()
    assert (email.to, email.status, email.attempts) == ("ann@example.com", EmailStatus.QUEUED, 0)
    assert email.message_id == f"<{email.id}@mail.example.test>"
    assert email.message_id == message_id_for(email.id, "mail.example.test")


def test_the_digest_id_names_project_recipient_and_period_only() -> None:
    project = uuid4()
    same = digest_email_id(project, "ANN@example.com ", "2026-W48")
    assert same == digest_email_id(project, "ann@example.com", "2026-W48")
    assert same != digest_email_id(project, "ann@example.com", "2026-W49")
    assert same != digest_email_id(uuid4(), "ann@example.com", "2026-W48")
    assert same != digest_email_id(project, "bob@example.com", "2026-W48")


@pytest.mark.parametrize("subject", ["", "   ", "x" * 301])
def test_a_subject_must_be_one_bounded_line(subject: str) -> None:
    with pytest.raises(InvalidValueError):
        queued(subject=subject)


def test_line_breaks_in_a_subject_are_folded_away() -> None:
    # A CR/LF in a header would let user text inject headers; it becomes a space.
    assert queued(subject="Digest\r\nBcc: x@evil.test").subject == "Digest Bcc: x@evil.test"


def test_bodies_are_bounded_and_never_hold_nul() -> None:
    with pytest.raises(InvalidValueError):
        queued(text="x" * (MAX_BODY_CHARS + 1))
    assert "\x00" not in queued(html="a\x00b").html


def test_the_unsubscribe_link_is_stored_as_a_reference_never_as_a_url() -> None:
    project_id = uuid4()
    email = queued(
        stamp=make_stamp(project_id=project_id),
        links={LinkName.UNSUBSCRIBE_URL: UnsubscribeLink(project_id)},
    )
    assert email.list_unsubscribe == UnsubscribeLink(project_id)
    assert email.links == {"unsubscribe_url": f"unsubscribe:{project_id}"}


@pytest.mark.parametrize(
    "link", ["https://teaim.example/api/unsubscribe/tok", "javascript:alert(1)", "ftp://x"]
)
def test_a_url_or_anything_but_a_link_reference_is_refused(link: str) -> None:
    # The stored email never holds a secret: a URL (which would carry the token) is refused.
    with pytest.raises(InvalidValueError):
        queued(links={LinkName.UNSUBSCRIBE_URL: link})
    with pytest.raises(InvalidValueError):
        parse_link_ref(LinkName.UNSUBSCRIBE_URL, link)


def test_an_email_carries_only_its_own_kind_of_link_for_its_own_project() -> None:
    signing = SigningLink(signoff_id=uuid4(), request_id=uuid4())
    with pytest.raises(InvalidValueError):
        queued(links={LinkName.SIGNING_URL: signing})  # a digest carries no signing link
    with pytest.raises(InvalidValueError):
        queued(links={LinkName.UNSUBSCRIBE_URL: UnsubscribeLink(uuid4())})  # another project
    with pytest.raises(InvalidValueError):
        queued(kind=EmailKind.SIGNOFF_PACKAGE)  # a package carries no unsubscribe link
    package = queued(kind=EmailKind.SIGNOFF_PACKAGE, links={LinkName.SIGNING_URL: signing})
    assert package.link_refs() == {LinkName.SIGNING_URL: signing}
    assert package.list_unsubscribe is None


@given(st.uuids(), st.uuids())
def test_a_link_reference_reads_back_as_the_link_it_names(signoff: object, request: object) -> None:
    from domain.email import link_ref

    link = SigningLink(signoff_id=signoff, request_id=request)  # type: ignore[arg-type]
    assert parse_link_ref(LinkName.SIGNING_URL, link_ref(link)) == link
    with pytest.raises(InvalidValueError):
        parse_link_ref(LinkName.UNSUBSCRIBE_URL, link_ref(link))


def test_a_placeholder_survives_html_escaping() -> None:
    from markupsafe import escape

    for name in LinkName:
        assert str(escape(link_placeholder(name))) == link_placeholder(name)


def test_a_bad_address_is_refused() -> None:
    with pytest.raises(InvalidValueError):
        queued(to="not an address")


def test_defer_release_deliver() -> None:
    email = queued()
    stamp = make_stamp(email.org_id)
    email.defer(until=EPOCH + timedelta(hours=8), reason="quiet_hours", stamp=stamp)
    assert (email.status, email.not_before, email.defer_reason) == (
        EmailStatus.DEFERRED,
        EPOCH + timedelta(hours=8),
        "quiet_hours",
    )
    email.release(stamp=stamp)
    assert (email.status, email.not_before) == (EmailStatus.QUEUED, None)
    email.delivered(reply="250 2.0.0 queued", stamp=stamp)
    assert (email.status, email.attempts, email.final) == (EmailStatus.DELIVERED, 1, True)


def test_once_final_an_email_records_nothing_more() -> None:
    email = queued()
    stamp = make_stamp(email.org_id)
    email.delivered(reply="250", stamp=stamp)
    email.collect_events()
    email.delivered(reply="250 again", stamp=stamp)  # a repeat send's second record
    email.failed(code=550, error="late bounce", stamp=stamp)
    email.cancel(reason="unsubscribed", stamp=stamp)
    email.release(stamp=stamp)
    assert email.collect_events() == []
    assert email.status is EmailStatus.DELIVERED
    with pytest.raises(RuleViolationError):
        email.defer(until=EPOCH, reason="quiet_hours", stamp=stamp)
    with pytest.raises(RuleViolationError):
        email.delivery_failed(code=451, error="later", retry_at=EPOCH, stamp=stamp)


@given(failures=st.integers(min_value=1, max_value=20))
def test_temporary_failures_end_in_failed_at_the_attempt_limit(failures: int) -> None:
    email = queued()
    stamp = make_stamp(email.org_id)
    for _ in range(failures):
        if email.final:
            break
        email.delivery_failed(code=451, error="try later", retry_at=EPOCH, stamp=stamp)
        if not email.final:
            email.release(stamp=stamp)
    assert email.attempts == min(failures, MAX_ATTEMPTS)
    assert email.status is (EmailStatus.FAILED if failures >= MAX_ATTEMPTS else EmailStatus.QUEUED)


def test_the_error_kept_on_an_outcome_is_bounded() -> None:
    email = queued()
    email.delivery_failed(code=451, error="e" * 10_000, retry_at=EPOCH, stamp=make_stamp())
    assert email.last_error is not None
    assert len(email.last_error) <= 500
