"""Reads that share a cached aggregate never see it change under them (issue 7).

Queries are handed the cached instance itself (no copy); the library's repository used to
fast-forward that very instance when a later read found new events, so a query saw members
appear mid-iteration ("dictionary changed size during iteration") or a version that did not
match its members.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

import pytest

from application.aggregate_cache import CopyOnWriteRepository
from domain.roles import Role
from tests.support.apps import make_app, seed_org

READERS = 4
WRITES = 60
SEEDED = 150


@pytest.fixture
def eager_thread_switches() -> Iterator[None]:
    # Switch threads every few microseconds, so readers and the writer interleave within one
    # iteration instead of between them (the default is every 5 ms).
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


def test_an_aggregate_a_reader_holds_does_not_change_when_the_cache_moves_on() -> None:
    app = make_app(cached=True)
    _, project_id, owner = seed_org(app)
    held = app.get_project(ctx=owner, project_id=project_id)
    version, members = held.version, dict(held.members)

    app.add_member(ctx=owner, project_id=project_id, user_id="uma", role=Role.MEMBER, signer=False)
    newer = app.get_project(ctx=owner, project_id=project_id)  # fast-forwards the cache

    assert newer.version == version + 1
    assert "uma" in newer.members
    assert (held.version, dict(held.members)) == (version, members)
    # Unchanged reads share one instance: the copy is paid only when there is news.
    assert app.get_project(ctx=owner, project_id=project_id) is newer
    assert isinstance(app.repository, CopyOnWriteRepository)


@pytest.mark.usefixtures("eager_thread_switches")
def test_concurrent_readers_see_whole_versions_while_a_writer_adds_members() -> None:
    app = make_app(cached=True)
    _, project_id, owner = seed_org(app)
    for n in range(SEEDED):
        app.add_member(
            ctx=owner, project_id=project_id, user_id=f"s{n}", role=Role.MEMBER, signer=False
        )
    done = threading.Event()
    failures: list[BaseException] = []
    base = app.get_project(ctx=owner, project_id=project_id)
    base_members, base_version = len(base.members), base.version

    def read() -> None:
        try:
            while not done.is_set():
                project = app.get_project(ctx=owner, project_id=project_id)
                version = project.version
                # Each write adds one member: a whole version has exactly this many.
                count = sum(1 for _ in project.members.items())
                assert count == base_members + (version - base_version), (count, version)
                assert project.version == version
        except BaseException as error:  # reported to the test thread
            failures.append(error)

    readers = [threading.Thread(target=read) for _ in range(READERS)]
    for reader in readers:
        reader.start()
    try:
        for n in range(WRITES):
            app.add_member(
                ctx=owner, project_id=project_id, user_id=f"u{n}", role=Role.MEMBER, signer=False
            )
    finally:
        done.set()
        for reader in readers:
            reader.join(timeout=60)
    assert failures == []
    final = app.get_project(ctx=owner, project_id=project_id)
    assert len(final.members) == base_members + WRITES
