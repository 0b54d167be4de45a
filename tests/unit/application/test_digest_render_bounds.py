"""A digest can never outgrow the email body limit: every field at its maximum, written in the
characters HTML escaping lengthens most, still renders both bodies under half the limit (the
review's poisoned week was 274,000 characters of HTML), and `Email.queue` accepts them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from uuid import uuid4
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from application.digest_content import (
    SECTION_LIMIT,
    SIGNERS_LIMIT,
    DigestSections,
    DigestWindow,
    DocumentChange,
    RaidChange,
    RaidDue,
    Section,
    StageDecision,
    WaitingSignOff,
)
from application.digest_render import BODY_BOUND, DigestProject, render_digest
from domain.email import MAX_BODY_CHARS, Email, EmailKind
from domain.stamps import Stamp

END = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
# The domain's maxima: names and titles 200, rejection reasons 2,000, user ids 200; document
# names are taken longer than any file name (1,000) in case a later rule allows them.
NAME, REASON, PERSON, DOCUMENT = 200, 2000, 200, 1000
# `"` and `'` become five characters in escaped HTML, `&` five, `<` and `>` four.
WORST = "\"'&<>"


def _text(size: int) -> st.SearchStrategy[str]:
    # Mostly the worst characters, sometimes any (non-surrogate) character; always full size.
    alphabet = st.one_of(st.sampled_from(WORST), st.characters(exclude_categories=["Cs"]))
    return st.text(alphabet=alphabet, min_size=size, max_size=size)


@st.composite
def _sections(draw: st.DrawFn) -> tuple[str, DigestSections]:
    p = uuid4()
    name, title, reason = draw(_text(NAME)), draw(_text(NAME)), draw(_text(REASON))
    person, document = draw(_text(PERSON)), draw(_text(DOCUMENT))
    total = draw(st.integers(min_value=SECTION_LIMIT, max_value=10**6))
    signers = tuple(person for _ in range(SIGNERS_LIMIT))

    def full(item: object) -> Section[object]:
        return Section(tuple(item for _ in range(SECTION_LIMIT)), total)

    sections = DigestSections(
        decisions=full(StageDecision(p, uuid4(), title, "rejected", reason, END)),  # type: ignore[arg-type]
        waiting=full(WaitingSignOff(p, uuid4(), title, signers, 10**6, 10**6, False)),  # type: ignore[arg-type]
        documents=full(DocumentChange(p, uuid4(), document, "updated", END)),  # type: ignore[arg-type]
        raid_changes=full(RaidChange(p, uuid4(), title, title, title, "updated", END)),  # type: ignore[arg-type]
        raid_due=full(RaidDue(p, uuid4(), title, title, person, date(2026, 11, 30))),  # type: ignore[arg-type]
    )
    return name, sections


@settings(max_examples=40, deadline=None)
@given(drawn=_sections(), zone=st.sampled_from(["UTC", "Europe/Berlin", "America/Los_Angeles"]))
def test_every_digest_fits_the_body_limit_with_margin(
    drawn: tuple[str, DigestSections], zone: str
) -> None:
    name, sections = drawn
    tz = ZoneInfo(zone)
    project = DigestProject(uuid4(), uuid4(), "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", name)
    digest = render_digest(
        project,
        sections,
        DigestWindow.week_ending(END, tz),
        tz,
        # A long public base URL with escaping characters of its own.
        base_url="https://teaim.example/" + "a&b" * 300,
        period="2026-W48",
    )
    assert len(digest.html) <= BODY_BOUND <= MAX_BODY_CHARS // 2
    assert len(digest.text) <= BODY_BOUND
    # The outbox takes it (the check that made the review's tick raise).
    Email.queue(
        email_id=uuid4(),
        kind=EmailKind.DIGEST,
        to="someone@example.test",
        subject=digest.subject,
        text=digest.text,
        html=digest.html,
        mail_domain="mail.teaim.test",
        stamp=Stamp(project.org_id, "scheduler", "t", END, project_id=project.project_id),
    )


def test_rows_that_do_not_fit_a_section_join_the_count_of_the_rest() -> None:
    p = uuid4()
    tz = ZoneInfo("UTC")
    reason = "<" * 2000
    items = tuple(StageDecision(p, uuid4(), '"' * 200, "rejected", reason, END) for _ in range(10))
    digest = render_digest(
        DigestProject(uuid4(), p, "EVIL", '"' * 200),
        DigestSections(decisions=Section(items, 12)),
        DigestWindow.week_ending(END, tz),
        tz,
        base_url="https://t.example",
        period="2026-W48",
    )
    listed = digest.text.count("rejected (")
    assert 0 < listed < 10
    assert f"and {12 - listed} more" in digest.text
    assert f"and {12 - listed} more" in digest.html
    # Each reason is cut with an ellipsis, never dropped silently.
    assert "<" * 399 + "\u2026" in digest.text
    assert "<" * 400 not in digest.text


def test_ordinary_text_is_shown_whole() -> None:
    p = uuid4()
    tz = ZoneInfo("UTC")
    reason = "The budget table on page 4 does not add up; please fix the totals. " * 5
    decision = StageDecision(p, uuid4(), "Design review", "rejected", reason.strip(), END)
    digest = render_digest(
        DigestProject(uuid4(), p, "APO", "Apollo"),
        DigestSections(decisions=Section((decision,), 1)),
        DigestWindow.week_ending(END, tz),
        tz,
        base_url="https://t.example",
        period="2026-W48",
    )
    assert reason.strip() in digest.text
    assert "more" not in digest.text.split("--")[0]
