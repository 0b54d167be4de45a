"""Digest content from real events: the week's sections, bounded, one query each for many
projects, and never another project's or org's rows."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.digest_db import DigestDatabase
from adapters.postgres.queries.digest_content import PostgresDigestContent
from application.digest_content import SECTION_LIMIT, DigestKey, DigestSections, DigestWindow
from domain.raid import RaidKind
from domain.roles import Role
from tests.support.apps import open_app
from tests.support.catch_up import catch_up
from tests.support.clocks import SettableClock
from tests.support.contexts import user
from tests.support.digests import DURING, WEEK_END, WeekOfWork, new_org, week_of_work

BERLIN = ZoneInfo("Europe/Berlin")
WINDOW = DigestWindow.week_ending(WEEK_END, BERLIN)


@pytest.fixture
def digest_db(database_url: str) -> Iterator[DigestDatabase]:
    db = DigestDatabase(DatabaseUrl.parse(database_url))
    yield db
    db.close()


def _content(db: DigestDatabase) -> PostgresDigestContent:
    return PostgresDigestContent(lambda _orgs: db.transaction())


def _ids(sections: DigestSections) -> dict[str, set[UUID]]:
    return {
        "decisions": {d.stage_id for d in sections.decisions.items},
        "waiting": {w.stage_id for w in sections.waiting.items},
        "documents": {d.document_id for d in sections.documents.items},
        "raid_changes": {r.item_id for r in sections.raid_changes.items},
        "raid_due": {r.item_id for r in sections.raid_due.items},
    }


def test_the_week_of_one_project_and_nothing_of_its_neighbours(
    database_url: str, digest_db: DigestDatabase
) -> None:
    clock = SettableClock()
    app = open_app(database_url, clock=clock)
    try:
        org, other_org = new_org(app), new_org(app)
        work = week_of_work(app, clock, org, "Mine")
        neighbour = week_of_work(app, clock, org, "CANARY-PROJECT")
        foreign = week_of_work(app, clock, other_org, "CANARY-ORG")
    finally:
        app.close()
    catch_up(database_url)
    content = _content(digest_db)
    before = digest_db.queries.count
    found = content.sections(
        [
            DigestKey(org, work.project_id, WINDOW),
            DigestKey(org, neighbour.project_id, WINDOW),
            # A key naming a project under the wrong org finds nothing.
            DigestKey(org, foreign.project_id, WINDOW),
        ]
    )
    assert digest_db.queries.count - before == 5  # one per section, for all three keys
    assert foreign.project_id not in found
    _check(found[work.project_id], work, "Mine")
    _check(found[neighbour.project_id], neighbour, "CANARY-PROJECT")


def _check(sections: DigestSections, work: WeekOfWork, label: str) -> None:
    ids = _ids(sections)
    assert ids["decisions"] == {work.signed_stage, work.rejected_stage}
    rejected = next(d for d in sections.decisions.items if d.decision == "rejected")
    assert rejected.reason == f"{label} not ready"
    assert ids["waiting"] == {work.waiting_stage}
    waiting = sections.waiting.items[0]
    assert waiting.waiting_on == ("carol",)
    assert not waiting.anyone
    # The late document (after the week's end) is not in this digest.
    assert ids["documents"] == {work.new_document, work.renamed_document}
    changes = {d.document_id: d.change for d in sections.documents.items}
    assert changes[work.new_document] == "new"
    assert changes[work.renamed_document] == "updated"
    assert ids["raid_changes"] == {work.new_raid, work.changed_raid}
    assert ids["raid_due"] == {work.due_raid}
    texts = repr(sections)
    assert all(label in t.title for t in sections.decisions.items)
    for canary in ("CANARY-PROJECT", "CANARY-ORG", "Mine"):
        if canary != label:
            assert canary not in texts


def test_sections_are_bounded_with_the_total(database_url: str, digest_db: DigestDatabase) -> None:
    clock = SettableClock()
    app = open_app(database_url, clock=clock)
    try:
        org = new_org(app)
        work = week_of_work(app, clock, org, "Busy")
        clock.set(DURING)
        owner = user("owner", org, Role.ADMIN, "seed")
        for n in range(SECTION_LIMIT + 3):
            app.create_raid_item(
                ctx=owner, project_id=work.project_id, kind=RaidKind.RISK, fields={"title": f"r{n}"}
            )
    finally:
        app.close()
    catch_up(database_url)
    sections = _content(digest_db).sections([DigestKey(org, work.project_id, WINDOW)])
    raid = sections[work.project_id].raid_changes
    assert len(raid.items) == SECTION_LIMIT
    assert raid.total == SECTION_LIMIT + 3 + 2
    assert raid.more == 5
