"""The digest email: sections, bounds, "no changes", and hostile text escaped in HTML."""

from __future__ import annotations

from datetime import UTC, date, datetime
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

from application.digest_content import (
    DigestSections,
    DigestWindow,
    DocumentChange,
    RaidDue,
    Section,
    StageDecision,
    WaitingSignOff,
)
from application.digest_render import DigestProject, render_digest

BERLIN = ZoneInfo("Europe/Berlin")
END = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)  # Fri 09:00 CET
WINDOW = DigestWindow.week_ending(END, BERLIN)
HOSTILE = '<script>alert("x")</script> & <b>bold</b>'


def _project(name: str = "Apollo") -> DigestProject:
    return DigestProject(org_id=uuid4(), project_id=uuid4(), code="APO", name=name)


def _decision(project_id: UUID, title: str) -> StageDecision:
    return StageDecision(project_id, uuid4(), title, "rejected", "not yet", END)


def test_window_is_the_local_week_before_the_slot() -> None:
    assert WINDOW.start == datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    assert (WINDOW.due_from, WINDOW.due_until) == (date(2026, 11, 27), date(2026, 12, 4))


def test_window_across_the_spring_change_is_one_hour_shorter() -> None:
    # Berlin Fri 3 Apr 2026 09:00 CEST = 07:00Z; a week earlier 09:00 CET = 08:00Z.
    window = DigestWindow.week_ending(datetime(2026, 4, 3, 7, 0, tzinfo=UTC), BERLIN)
    assert window.start == datetime(2026, 3, 27, 8, 0, tzinfo=UTC)


def test_hostile_text_is_escaped_in_html_and_raw_in_text() -> None:
    project = _project(HOSTILE)
    sections = DigestSections(
        decisions=Section((_decision(project.project_id, HOSTILE),), 1),
        documents=Section((DocumentChange(project.project_id, uuid4(), HOSTILE, "new", END),), 1),
    )
    digest = render_digest(
        project, sections, WINDOW, BERLIN, base_url="https://teaim.example", period="2026-W48"
    )
    assert "<script>" not in digest.html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;" in digest.html
    assert HOSTILE in digest.text
    assert "\n" not in digest.subject
    assert "\r" not in digest.subject


def test_sections_are_bounded_with_a_count_of_the_rest() -> None:
    project = _project()
    items = tuple(_decision(project.project_id, f"Stage {n}") for n in range(10))
    sections = DigestSections(decisions=Section(items, 25))
    digest = render_digest(
        project, sections, WINDOW, BERLIN, base_url="https://t.example/", period="2026-W48"
    )
    assert "Sign-offs and rejections (25)" in digest.text
    assert "and 15 more" in digest.text
    assert "and 15 more" in digest.html
    stage_url = f"https://t.example/api/projects/{project.project_id}/stages/{items[0].stage_id}"
    assert stage_url in digest.text
    assert stage_url in digest.html


def test_waiting_names_the_signers_and_external_links() -> None:
    project = _project()
    waiting = WaitingSignOff(project.project_id, uuid4(), "Design", ("bob", "carol"), 2, 1, False)
    due = RaidDue(project.project_id, uuid4(), "action", "Ship it", "dave", date(2026, 11, 30))
    digest = render_digest(
        project,
        DigestSections(waiting=Section((waiting,), 1), raid_due=Section((due,), 1)),
        WINDOW,
        BERLIN,
        base_url="https://t.example",
        period="2026-W48",
    )
    assert "Design: waiting on bob, carol; 1 external signer" in digest.text
    assert "2026-11-30 [action] Ship it (owner: dave)" in digest.text
    assert not digest.empty


def test_nothing_new_is_a_short_no_changes_digest() -> None:
    digest = render_digest(
        _project(), DigestSections(), WINDOW, BERLIN, base_url="https://t.example", period=None
    )
    assert digest.empty
    assert digest.subject == "[APO] Apollo: weekly digest to 2026-11-27: no changes"
    assert "No changes this week." in digest.text
    assert "No changes this week." in digest.html
