"""The digest tick on a real database: three schedulers, one email per (project, recipient,
period); catch-up within the week, never an older week; empty digests skipped once; a
bounded, org-fair batch per run; a constant number of queries per tick."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from application.digests import TickResult
from domain.org import DigestWhenEmpty, Weekday
from domain.stamps import Stamp
from tests.support.apps import open_app
from tests.support.catch_up import catch_up
from tests.support.clocks import SettableClock
from tests.support.digests import (
    BEFORE,
    DigestRig,
    configure_org,
    digest_rig,
    new_org,
    queued_digests,
    quiet_project,
    subscribe,
)
from tests.support.legacy_addresses import legacy_external

# Berlin, Friday 27 Nov 2026 09:00 CET.
SLOT = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
N_PROJECTS = 4
N_RECIPIENTS = 3


@pytest.fixture
def rigs(database_url: str) -> Iterator[Callable[..., DigestRig]]:
    made: list[DigestRig] = []

    def make(**kwargs: int) -> DigestRig:
        rig = digest_rig(database_url, SettableClock(SLOT), **kwargs)
        made.append(rig)
        return rig

    yield make
    for rig in made:
        rig.close()


def _seed(
    database_url: str,
    *,
    timezone: str = "Europe/Berlin",
    weekday: Weekday = Weekday.FRI,
    at: str = "09:00",
    orgs: int = 1,
    projects: int = N_PROJECTS,
    recipients: int = N_RECIPIENTS,
    when_empty: DigestWhenEmpty = DigestWhenEmpty.SHORT,
) -> dict[UUID, list[UUID]]:
    app = open_app(database_url)
    made: dict[UUID, list[UUID]] = {}
    try:
        for o in range(orgs):
            org = new_org(app)
            configure_org(
                app, org, timezone=timezone, weekday=weekday, at=at, when_empty=when_empty
            )
            made[org] = []
            for p in range(projects):
                project = quiet_project(app, org, f"O{o}P{p}", f"Project {o}-{p}")
                subscribe(app, org, project, [f"r{n}@example.test" for n in range(recipients)])
                made[org].append(project)
    finally:
        app.close()
    catch_up(database_url)
    return made


def _race(rigs: list[DigestRig], nows: list[datetime]) -> list[TickResult]:
    """Each rig ticks at its own `now`, all released at once."""
    barrier = threading.Barrier(len(rigs))
    results: list[TickResult | BaseException] = [RuntimeError("not run")] * len(rigs)

    def run(i: int) -> None:
        barrier.wait(timeout=30)
        try:
            results[i] = rigs[i].digests.tick(nows[i])
        except BaseException as error:  # reported below, in the test thread
            results[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(rigs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return [r for r in results if isinstance(r, TickResult)]


def test_three_schedulers_queue_each_digest_once(
    database_url: str, rigs: Callable[..., DigestRig]
) -> None:
    _seed(database_url)
    schedulers = [rigs() for _ in range(3)]
    expected = N_PROJECTS * N_RECIPIENTS

    # The same run time on all three (one grid slot, every process tries it).
    results = _race(schedulers, [SLOT + timedelta(minutes=5)] * 3)
    assert sum(r.queued for r in results) == expected
    assert sum(r.queued + r.already_queued for r in results) == 3 * expected
    queued = queued_digests(database_url)
    assert len(queued) == expected
    assert max(Counter(email for email, _ in queued).values()) == 1

    # Later runs of the same week, before the outbox read model caught up: every draft
    # meets its id in the store (already queued), nothing new.
    later = [SLOT + timedelta(hours=1), SLOT + timedelta(days=1), SLOT + timedelta(days=2)]
    results = _race(schedulers, later)
    assert sum(r.queued for r in results) == 0
    assert sum(r.already_queued for r in results) == 3 * expected
    # Once the read model has them, a tick finds nothing pending at all.
    catch_up(database_url)
    results = _race(schedulers, later)
    assert all(r.projects == 0 for r in results)
    assert len(queued_digests(database_url)) == expected


def test_catch_up_within_the_week_but_not_for_an_older_one(
    database_url: str, rigs: Callable[..., DigestRig]
) -> None:
    _seed(database_url, projects=1, recipients=1)
    rig = rigs()
    assert rig.digests.tick(SLOT - timedelta(minutes=1)).due_orgs == 0
    # Down from before the slot until next Monday: W48 is over, W49 not due yet.
    assert rig.digests.tick(datetime(2026, 11, 30, 9, tzinfo=UTC)).queued == 0
    # Down until Sunday evening instead: the first tick still sends this week's digest.
    assert rig.digests.tick(datetime(2026, 11, 29, 20, tzinfo=UTC)).queued == 1


def test_an_empty_project_is_skipped_once_when_the_org_says_skip(
    database_url: str, rigs: Callable[..., DigestRig]
) -> None:
    _seed(database_url, projects=2, recipients=2, when_empty=DigestWhenEmpty.SKIP)
    rig = rigs()
    first = rig.digests.tick(SLOT)
    assert (first.projects, first.skipped_empty, first.queued) == (2, 2, 0)
    again = rig.digests.tick(SLOT + timedelta(minutes=5))
    assert again.projects == 0
    assert queued_digests(database_url) == []


def test_a_short_no_changes_digest_otherwise(
    database_url: str, rigs: Callable[..., DigestRig]
) -> None:
    _seed(database_url, projects=1, recipients=1)
    rig = rigs()
    assert rig.digests.tick(SLOT).queued == 1


def test_a_run_is_bounded_and_fair_across_orgs(
    database_url: str, rigs: Callable[..., DigestRig]
) -> None:
    made = _seed(database_url, orgs=3, projects=3, recipients=1)
    rig = rigs(max_projects=3)
    first = rig.digests.tick(SLOT)
    assert (first.projects, first.queued, first.more_pending) == (3, 3, True)
    # One project of each org in the first run: no org waits behind another's projects.
    orgs_served = Counter(project for _, project in queued_digests(database_url))
    by_org = {org: sum(orgs_served[p] for p in projects) for org, projects in made.items()}
    assert sorted(by_org.values()) == [1, 1, 1]
    catch_up(database_url)
    assert rig.digests.tick(SLOT + timedelta(minutes=5)).queued == 3
    catch_up(database_url)
    last = rig.digests.tick(SLOT + timedelta(minutes=10))
    assert (last.queued, last.more_pending) == (3, False)


def test_queries_per_tick_do_not_grow_with_projects(
    database_url: str, rigs: Callable[..., DigestRig]
) -> None:
    _seed(database_url, orgs=2, projects=6, recipients=2)
    small, large = rigs(max_projects=2), rigs(max_projects=50)
    before = small.db.queries.count
    assert small.digests.tick(SLOT).projects == 2
    small_queries = small.db.queries.count - before
    before = large.db.queries.count
    # Six times the projects (the outbox read model has not seen the first run's emails:
    # those two projects come again and meet their ids in the store).
    assert large.digests.tick(SLOT).projects == 12
    assert large.db.queries.count - before == small_queries


@pytest.mark.parametrize(
    ("at", "ticks", "due_from"),
    [
        # Los Angeles, Sunday 8 March 2026: 02:30 does not exist; it is sent at 03:30 PDT.
        (
            "02:30",
            [
                datetime(2026, 3, 8, 10, 25, tzinfo=UTC),
                datetime(2026, 3, 8, 10, 30, tzinfo=UTC),
                datetime(2026, 3, 8, 11, 30, tzinfo=UTC),
                datetime(2026, 3, 9, 6, 0, tzinfo=UTC),
            ],
            1,
        ),
        # Los Angeles, Sunday 1 November 2026: 01:30 happens twice (08:30Z and 09:30Z).
        (
            "01:30",
            [
                datetime(2026, 11, 1, 8, 25, tzinfo=UTC),
                datetime(2026, 11, 1, 8, 30, tzinfo=UTC),
                datetime(2026, 11, 1, 9, 30, tzinfo=UTC),
                datetime(2026, 11, 2, 7, 0, tzinfo=UTC),
            ],
            1,
        ),
    ],
    ids=["skipped-hour", "repeated-hour"],
)
def test_daylight_saving_neither_skips_nor_doubles_a_digest(
    database_url: str, rigs: Callable[..., DigestRig], at: str, ticks: list[datetime], due_from: int
) -> None:
    _seed(
        database_url,
        timezone="America/Los_Angeles",
        weekday=Weekday.SUN,
        at=at,
        projects=1,
        recipients=2,
    )
    rig = rigs()
    queued = []
    for now in ticks:
        queued.append(rig.digests.tick(now).queued)
        catch_up(database_url)
    # Nothing before the slot, both recipients at it, nothing again in the same week.
    assert queued[:due_from] == [0] * due_from
    assert queued[due_from] == 2
    assert sum(queued) == 2
    assert len(queued_digests(database_url)) == 2


def test_projects_left_with_only_refused_addresses_are_recorded_and_starve_nobody(
    database_url: str, rigs: Callable[..., DigestRig]
) -> None:
    # (Re-review of issue 9: three orgs whose only recipient is an address recorded under an
    # older rule stayed pending all week and filled every run of three, so a fourth org's
    # project never got its digest.)
    clock = SettableClock(BEFORE)
    app = open_app(database_url, clock=clock)
    try:
        stuck = []
        for n in range(3):
            org = new_org(app)
            configure_org(app, org)
            project = quiet_project(app, org, f"ST{n}", "Stuck")
            legacy_external(
                app, Stamp(org, "seed", "seed", BEFORE, project_id=project), project, "a@[b.com"
            )
            stuck.append(project)
        victim = new_org(app)
        configure_org(app, victim)
        served = quiet_project(app, victim, "VV", "Victim")
        subscribe(app, victim, served, ["v@example.test"])
    finally:
        app.close()
    catch_up(database_url)
    rig = rigs(max_projects=3)
    results = []
    for minutes in (0, 5, 10):
        results.append(rig.digests.tick(SLOT + timedelta(minutes=minutes)))
        catch_up(database_url)
    assert [p for _, p in queued_digests(database_url)] == [served]
    assert sum(r.skipped_unaddressable for r in results) == 3
    assert results[-1].projects == 0  # nothing is gathered again
