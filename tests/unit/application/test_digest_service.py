"""The digest tick's own logic over in-memory ports: due orgs only, one render per project,
bounded runs, unusable settings and addresses skipped without stopping the others."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from application.config import AppConfig
from application.digest_content import DigestKey, DigestSections, Section, StageDecision
from application.digests import Digests, OrgDigestSettings, PendingProject, manual_email_id
from domain.email import LinkName, UnsubscribeLink, digest_email_id
from domain.org import DigestSchedule, Weekday
from tests.support.clocks import SettableClock
from tests.support.digest_fakes import FakeContent, FakeOutbox, FakeSource, NoGuard

SLOT = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)  # Fri 09:00 Berlin
CONFIG = AppConfig(public_base_url="https://t.example", unsubscribe_key=b"u" * 32)
FRIDAY = DigestSchedule(Weekday.FRI, "09:00")


def _service(
    source: FakeSource, max_projects: int = 100, max_emails: int = 10_000
) -> tuple[Digests, FakeContent, FakeOutbox]:
    content, outbox = FakeContent(), FakeOutbox(source)
    digests = Digests(
        source=source,
        content=content,
        outbox=outbox,
        guard=NoGuard(),
        clock=SettableClock(SLOT),
        config=CONFIG,
        max_projects=max_projects,
        max_emails=max_emails,
    )
    return digests, content, outbox


def _org(source: FakeSource, tz: str = "Europe/Berlin", projects: int = 1, **kw: object) -> None:
    org = uuid4()
    source.orgs.append(OrgDigestSettings(org, tz, kw.get("schedule", FRIDAY), "short"))  # type: ignore[arg-type]
    for n in range(projects):
        project = uuid4()
        source.projects.append(PendingProject(org, project, f"P{n}", f"Project {n}", ""))
        source.addresses[project] = ["a@example.test", "b@example.test"]


def test_only_due_orgs_and_one_content_call_per_tick() -> None:
    source = FakeSource()
    _org(source, projects=3)
    _org(source, tz="Pacific/Auckland", schedule=DigestSchedule(Weekday.SAT, "09:00"))
    digests, content, outbox = _service(source)
    result = digests.tick(SLOT)
    # Auckland's Saturday 09:00 (Fri 20:00Z) is still ahead at the Berlin slot.
    assert (result.due_orgs, result.projects, result.queued) == (1, 3, 6)
    assert len(content.calls) == 1
    draft = next(iter(outbox.drafts.values()))
    assert draft.period == "2026-W48"
    assert draft.email_id == digest_email_id(
        draft.stamp.project_id or uuid4(), draft.to, "2026-W48"
    )
    # The recipient's own unsubscribe link, as a reference (derived at send time, not stored).
    assert draft.links == {LinkName.UNSUBSCRIBE_URL: UnsubscribeLink(draft.stamp.project_id)}  # type: ignore[arg-type]
    # Run again: nothing pending (each recipient has its period's email).
    assert digests.tick(SLOT + timedelta(minutes=5)).projects == 0


def test_unusable_settings_and_addresses_do_not_stop_the_others() -> None:
    source = FakeSource()
    _org(source, tz="Not/AZone")
    _org(source)
    source.addresses[source.projects[1].project_id].append("not an address")
    digests, _, _ = _service(source)
    result = digests.tick(SLOT)
    assert (result.due_orgs, result.queued, result.bad_addresses) == (1, 2, 1)


def test_a_bounded_run_says_more_are_pending() -> None:
    source = FakeSource()
    _org(source, projects=5)
    digests, _, _ = _service(source, max_projects=2)
    first = digests.tick(SLOT)
    assert (first.projects, first.more_pending) == (2, True)
    assert digests.tick(SLOT).projects == 2
    assert digests.tick(SLOT).more_pending is False


def test_empty_and_skip_records_a_skip_instead_of_an_email() -> None:
    source = FakeSource()
    _org(source)
    source.orgs[0] = OrgDigestSettings(source.orgs[0].org_id, "Europe/Berlin", FRIDAY, "skip")
    digests, content, outbox = _service(source)
    content.sections_of[source.projects[0].project_id] = DigestSections()
    result = digests.tick(SLOT)
    assert (result.skipped_empty, result.queued) == (1, 0)
    assert outbox.drafts == {}
    assert digests.tick(SLOT).projects == 0


def test_manual_ids_are_per_request_and_per_normalised_address() -> None:
    project = uuid4()
    assert manual_email_id(project, "req-1", "Ann@Example.test ") == manual_email_id(
        project, "req-1", "ann@example.test"
    )
    assert manual_email_id(project, "req-1", "ann@example.test") != manual_email_id(
        project, "req-2", "ann@example.test"
    )
    assert manual_email_id(project, "req-1", "ann@example.test") != digest_email_id(
        project, "ann@example.test", "2026-W48"
    )


def test_max_projects_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_projects"):
        _service(FakeSource(), max_projects=0)


def test_a_project_whose_digest_cannot_be_rendered_costs_no_other_project_its_digest() -> None:
    source = FakeSource()
    _org(source, projects=2)
    _org(source)
    broken = source.projects[0]
    digests, content, outbox = _service(source)
    # Any exception while rendering (here a title that is not text) is isolated.
    bad = StageDecision(broken.project_id, uuid4(), None, "rejected", None, SLOT)  # type: ignore[arg-type]
    content.sections_of[broken.project_id] = DigestSections(decisions=Section((bad,), 1))
    result = digests.tick(SLOT)
    assert (result.projects, result.queued, result.failed_projects) == (3, 4, 1)
    assert {d.stamp.project_id for d in outbox.drafts.values()} == {
        p.project_id for p in source.projects[1:]
    }
    # Recorded for the period: the next runs do not try it again.
    assert [s.project_id for s in source.skips] == [broken.project_id]
    assert digests.tick(SLOT).projects == 0


def test_a_project_whose_emails_the_store_refuses_is_recorded_and_the_rest_queued() -> None:
    source = FakeSource()
    _org(source)
    _org(source)
    digests, _, outbox = _service(source)
    outbox.refuse.add(source.projects[0].project_id)
    result = digests.tick(SLOT)
    assert (result.queued, result.failed_projects, result.failed_emails) == (2, 1, 2)
    assert [s.project_id for s in source.skips] == [source.projects[0].project_id]
    assert digests.tick(SLOT).projects == 0


def test_emails_per_run_are_bounded_and_a_project_may_be_finished_next_run() -> None:
    source = FakeSource()
    _org(source, projects=3)  # two recipients each
    digests, _, outbox = _service(source, max_emails=3)
    first = digests.tick(SLOT)
    # The first project whole, the second's first recipient; the rest next run.
    assert (first.projects, first.queued, first.more_pending) == (2, 3, True)
    second = digests.tick(SLOT)
    assert (second.projects, second.queued, second.more_pending) == (2, 3, False)
    assert len(outbox.drafts) == 6
    assert digests.tick(SLOT).projects == 0


def test_max_emails_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_emails"):
        _service(FakeSource(), max_emails=0)


def test_a_project_left_with_only_refused_addresses_is_recorded_not_gathered_again() -> None:
    # (Re-review of issue 9: a refused recipient was counted but never recorded, so its project
    # stayed pending and every later run of the week gathered and rendered it again.)
    source = FakeSource()
    _org(source, projects=3)
    only_bad, mixed, fine = source.projects
    source.addresses[only_bad.project_id] = ["a@[b.com"]
    source.addresses[mixed.project_id] = ["(x)victim@corp.com", "m@example.test"]
    digests, _, outbox = _service(source)
    first = digests.tick(SLOT)
    assert (first.projects, first.queued, first.bad_addresses) == (3, 3, 2)
    assert first.skipped_unaddressable == 2
    assert {s.project_id for s in source.skips} == {only_bad.project_id, mixed.project_id}
    assert fine.project_id not in {s.project_id for s in source.skips}
    assert len(outbox.drafts) == 3
    assert digests.tick(SLOT).projects == 0


def test_refused_addresses_take_no_place_in_the_email_budget() -> None:
    # A project whose first recipients are refused, cut by the budget right after them, would
    # otherwise be gathered with the same refused ones first on every run.
    source = FakeSource()
    _org(source)
    project = source.projects[0].project_id
    source.addresses[project] = ["a@[b.com", "(x)v@corp.com", "c@example.test", "d@example.test"]
    digests, _, outbox = _service(source, max_emails=1)
    first = digests.tick(SLOT)
    assert (first.queued, first.more_pending, first.skipped_unaddressable) == (1, True, 0)
    second = digests.tick(SLOT)
    assert (second.queued, second.more_pending, second.skipped_unaddressable) == (1, False, 1)
    assert sorted(d.to for d in outbox.drafts.values()) == ["c@example.test", "d@example.test"]
    assert digests.tick(SLOT).projects == 0


class _TimingOut(FakeContent):
    """Content whose read over `slow` times out (one org's huge week), alone or with others."""

    def __init__(self, slow: UUID) -> None:
        super().__init__()
        self.slow = slow

    def sections(self, keys: Sequence[DigestKey]) -> dict[UUID, DigestSections]:
        self.calls.append(list(keys))
        if any(k.org_id == self.slow for k in keys):
            raise TimeoutError("canceling statement due to statement timeout")
        return {}


def test_a_content_read_that_fails_for_one_org_fails_only_that_orgs_projects() -> None:
    source = FakeSource()
    _org(source, projects=2)
    _org(source)
    _org(source)
    slow = source.orgs[0].org_id
    content = _TimingOut(slow)
    outbox = FakeOutbox(source)
    digests = Digests(
        source=source,
        content=content,
        outbox=outbox,
        guard=NoGuard(),
        clock=SettableClock(SLOT),
        config=CONFIG,
    )
    result = digests.tick(SLOT)
    assert (result.projects, result.queued, result.failed_projects) == (4, 4, 2)
    assert len(content.calls) == 4  # all at once, then org by org
    assert {s.project_id for s in source.skips} == {
        p.project_id for p in source.projects if p.org_id == slow
    }
    assert {d.stamp.project_id for d in outbox.drafts.values()} == {
        p.project_id for p in source.projects if p.org_id != slow
    }
    assert digests.tick(SLOT).projects == 0


def test_a_content_read_that_fails_for_every_org_records_nothing() -> None:
    # Not one org readable: the database itself is likely down; the next run tries again.
    source = FakeSource()
    _org(source)
    digests = Digests(
        source=source,
        content=_TimingOut(source.orgs[0].org_id),
        outbox=FakeOutbox(source),
        guard=NoGuard(),
        clock=SettableClock(SLOT),
        config=CONFIG,
    )
    with pytest.raises(TimeoutError):
        digests.tick(SLOT)
    assert source.skips == []
