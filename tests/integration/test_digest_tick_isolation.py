"""The security review's noisy neighbour, through real commands on a real database: one org
fills a project's week to the field maxima (quote-filled titles and reasons, ten rounds of
ten 200-character signer ids, 2,000-character rejections). Its digest stays within the email
body limit; and when a project's emails are refused all the same (here: a lowered limit),
every other org's digest is still queued in the same tick and the refused project is
recorded, not retried on every run. A tick's emails are bounded, round-robin over orgs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from uuid import UUID

import psycopg
import pytest

import domain.email
from application.digest_render import BODY_BOUND
from application.digests import EmailDraft
from domain.email import EmailKind, digest_email_id
from domain.roles import Role
from domain.stamps import Stamp
from tests.support.apps import open_app
from tests.support.catch_up import catch_up
from tests.support.clocks import SettableClock
from tests.support.contexts import user
from tests.support.digests import (
    BEFORE,
    DURING,
    WEEK_END,
    DigestRig,
    configure_org,
    digest_rig,
    new_org,
    queued_digests,
    quiet_project,
    subscribe,
)

VICTIMS = ["someone@example.test", "another@example.test"]


@pytest.fixture
def rigs(database_url: str) -> Iterator[Callable[..., DigestRig]]:
    made: list[DigestRig] = []

    def make(**kwargs: int) -> DigestRig:
        rig = digest_rig(database_url, SettableClock(WEEK_END), **kwargs)
        made.append(rig)
        return rig

    yield make
    for rig in made:
        rig.close()


def _poisoned_world(database_url: str) -> tuple[list[UUID], UUID]:
    """Two innocent orgs with a subscribed project each, and the noisy neighbour's project
    (the reviewer's scenario, with ordinary commands only). Returns (victims, evil)."""
    clock = SettableClock(BEFORE)
    app = open_app(database_url, clock=clock)
    try:
        victims = []
        for o in range(2):
            org = new_org(app)
            configure_org(app, org)
            project = quiet_project(app, org, f"V{o}", "Victim project")
            subscribe(app, org, project, VICTIMS)
            victims.append(project)
        evil = new_org(app)
        configure_org(app, evil)
        owner = user("owner", evil, Role.ADMIN, "seed")
        project = app.create_project(ctx=owner, code="EVIL", name='"' * 200).id
        ids = ['"' * (190 + i) for i in range(10)]
        for uid in ids:
            app.add_member(
                ctx=owner, project_id=project, user_id=uid, role=Role.MEMBER, signer=True
            )
        stages = [
            app.create_stage(ctx=owner, project_id=project, title='"' * 200, order=1).id
            for _ in range(20)
        ]
        clock.set(DURING)
        for stage in stages[:10]:
            app.request_signoff(ctx=owner, project_id=project, stage_id=stage, signers=ids)
        for stage in stages[10:]:
            app.request_signoff(ctx=owner, project_id=project, stage_id=stage, signers=[ids[0]])
            app.reject_stage(
                ctx=user(ids[0], evil), project_id=project, stage_id=stage, reason='"' * 2000
            )
        subscribe(app, evil, project, ["me@example.test"])
    finally:
        app.close()
    catch_up(database_url)
    return victims, project


def _html_of(database_url: str, project: UUID) -> str:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT state FROM teaim_events WHERE topic LIKE %s AND project_id = %s",
            ("%Email.Queued", project),
        ).fetchone()
    assert row is not None
    return bytes(row[0]).decode("utf-8", "replace")


def test_the_poisoned_week_renders_within_the_limit_and_every_org_gets_its_digest(
    database_url: str, rigs: Callable[..., DigestRig]
) -> None:
    victims, evil = _poisoned_world(database_url)
    result = rigs().digests.tick(WEEK_END)
    assert (result.projects, result.queued, result.failed_projects) == (3, 5, 0)
    queued = Counter(project for _, project in queued_digests(database_url))
    assert queued == {victims[0]: 2, victims[1]: 2, evil: 1}
    # The stored event holds both bodies (JSON-escaped, so longer than each body itself).
    assert len(_html_of(database_url, evil)) < 2 * BODY_BOUND + 10_000


def test_a_refused_project_is_recorded_and_costs_no_other_org_its_digest(
    database_url: str, rigs: Callable[..., DigestRig], monkeypatch: pytest.MonkeyPatch
) -> None:
    victims, evil = _poisoned_world(database_url)
    # Lower the store's body limit under the poisoned digest (about 60,000 characters of
    # HTML) but above the victims' (a few thousand): `Email.queue` refuses the neighbour's.
    monkeypatch.setattr(domain.email, "MAX_BODY_CHARS", 20_000)
    rig = rigs()
    first = rig.digests.tick(WEEK_END)
    assert (first.projects, first.queued, first.failed_projects, first.failed_emails) == (
        3,
        4,
        1,
        1,
    )
    queued = Counter(project for _, project in queued_digests(database_url))
    assert queued == {victims[0]: 2, victims[1]: 2}
    # Recorded for the period: later runs of the week neither fail again nor retry it.
    catch_up(database_url)
    for minutes in (5, 10):
        again = rig.digests.tick(WEEK_END + timedelta(minutes=minutes))
        assert (again.projects, again.failed_projects) == (0, 0)
    with psycopg.connect(database_url) as conn:
        recorded = conn.execute(
            "SELECT project_id, period FROM digest_skips WHERE project_id = %s", (evil,)
        ).fetchall()
    assert recorded == [(evil, "2026-W48")]


def test_emails_per_tick_are_bounded_and_a_big_org_does_not_starve_a_small_one(
    database_url: str, rigs: Callable[..., DigestRig]
) -> None:
    app = open_app(database_url)
    made: dict[UUID, list[UUID]] = {}
    try:
        for label, projects in (("big", 6), ("small", 2)):
            org = new_org(app)
            configure_org(app, org)
            made[org] = []
            for p in range(projects):
                project = quiet_project(app, org, f"{label[0].upper()}{p}X", f"{label} {p}")
                subscribe(app, org, project, ["a@example.test", "b@example.test"])
                made[org].append(project)
    finally:
        app.close()
    catch_up(database_url)
    big, small = made
    rig = rigs(max_emails=4)
    first = rig.digests.tick(WEEK_END)
    assert (first.queued, first.more_pending) == (4, True)
    by_org = Counter(
        org
        for _, project in queued_digests(database_url)
        for org, projects in made.items()
        if project in projects
    )
    # One project of each org: the small org's first digest is not behind six of the big's.
    assert by_org == {big: 2, small: 2}
    catch_up(database_url)
    second = rig.digests.tick(WEEK_END + timedelta(minutes=5))
    assert second.queued == 4
    catch_up(database_url)
    # The small org is done after two runs; the big one's remaining four projects follow.
    total = 8
    for minutes in (10, 15, 20):
        total += rig.digests.tick(WEEK_END + timedelta(minutes=minutes)).queued
        catch_up(database_url)
    assert total == 16
    assert rig.digests.tick(WEEK_END + timedelta(minutes=25)).queued == 0


def test_a_batch_whose_save_fails_is_saved_again_email_by_email(database_url: str) -> None:
    # An email that `Email.queue` accepts but the store cannot write (a lone surrogate cannot
    # be encoded): its batch's save fails as a whole, then every other email is saved alone.
    app = open_app(database_url)
    try:
        org = new_org(app)
        project = quiet_project(app, org, "BATCH", "Batch project")
        stamp = Stamp(org, "scheduler", "t", WEEK_END, project_id=project)

        def draft(n: int, subject: str) -> EmailDraft:
            address = f"r{n}@example.test"
            return EmailDraft(
                email_id=digest_email_id(project, address, "2026-W48"),
                kind=EmailKind.DIGEST,
                to=address,
                subject=subject,
                text="text",
                html="<p>html</p>",
                stamp=stamp,
                links={},
                period="2026-W48",
                ref=None,
            )

        drafts = [draft(n, "Digest") for n in range(5)]
        drafts.insert(2, draft(99, "Digest \ud800"))
        outcome = app.queue_emails(drafts)
        assert (outcome.queued, outcome.already, outcome.failed) == (5, 0, (drafts[2].email_id,))
        # Again: the five are already queued, the bad one still fails alone.
        again = app.queue_emails(drafts)
        assert (again.queued, again.already, len(again.failed)) == (0, 5, 1)
    finally:
        app.close()
    assert len(queued_digests(database_url)) == 5
