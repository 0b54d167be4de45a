"""A digest never carries another project's or another org's data (hypothesis, canaries).

Every project's stage titles, document names and RAID titles carry a canary unique to it; a
tick over all of them renders one digest per project in one batch of queries (the place
where a missing join on the tenant would leak), and each queued email must hold its own
project's canaries and nobody else's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from application.app import Teaim
from domain.email import Email
from domain.raid import RaidKind
from domain.roles import Role
from tests.conftest import ScratchDatabases
from tests.support.apps import open_app
from tests.support.catch_up import catch_up
from tests.support.clocks import SettableClock
from tests.support.contexts import user
from tests.support.digests import (
    DURING,
    WEEK_END,
    configure_org,
    digest_rig,
    new_org,
    queued_digests,
    quiet_project,
    subscribe,
)

KINDS = ("stage", "document", "raid", "due")


@dataclass(frozen=True)
class Planned:
    org: int
    kinds: frozenset[str]
    recipients: int


PLANS = st.lists(
    st.builds(
        Planned,
        org=st.integers(0, 2),
        kinds=st.frozensets(st.sampled_from(KINDS), min_size=1),
        recipients=st.integers(1, 2),
    ),
    min_size=2,
    max_size=5,
)


@contextmanager
def _database(databases: ScratchDatabases) -> Iterator[str]:
    url = databases.create()
    try:
        yield url
    finally:
        databases.drop(url)


def _content(app: Teaim, org: UUID, project: UUID, canary: str, kinds: frozenset[str]) -> None:
    owner = user("owner", org, Role.ADMIN, "seed")
    if "stage" in kinds:
        stage = app.create_stage(ctx=owner, project_id=project, title=f"{canary} s", order=1).id
        app.request_signoff(ctx=owner, project_id=project, stage_id=stage, signers=[])
    if "document" in kinds:
        app.register_artifact(
            ctx=owner,
            project_id=project,
            name=f"{canary} d",
            mime="text/plain",
            size=1,
            sha256="0" * 64,
            tags=[],
        )
    if "raid" in kinds or "due" in kinds:
        fields: dict[str, object] = {"title": f"{canary} r"}
        if "due" in kinds:
            fields["due_date"] = (WEEK_END + timedelta(days=2)).date().isoformat()
        app.create_raid_item(ctx=owner, project_id=project, kind=RaidKind.ISSUE, fields=fields)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plans=PLANS)
def test_every_digest_holds_only_its_own_project(
    databases: ScratchDatabases, plans: list[Planned]
) -> None:
    with _database(databases) as url:
        clock = SettableClock(DURING - timedelta(days=1))
        app = open_app(url, clock=clock)
        canaries: dict[UUID, str] = {}
        orgs_of: dict[UUID, UUID] = {}
        try:
            orgs = [new_org(app) for _ in range(3)]
            for org in orgs:
                configure_org(app, org)
            for n, plan in enumerate(plans):
                org = orgs[plan.org]
                project = quiet_project(app, org, f"C{n}", f"CANARY{n}X project")
                subscribe(
                    app, org, project, [f"p{n}r{r}@example.test" for r in range(plan.recipients)]
                )
                canaries[project], orgs_of[project] = f"CANARY{n}X", org
            clock.set(DURING)
            for n, plan in enumerate(plans):
                project = list(canaries)[n]
                _content(app, orgs_of[project], project, canaries[project], plan.kinds)
        finally:
            app.close()
        catch_up(url)
        rig = digest_rig(url, SettableClock(WEEK_END))
        try:
            result = rig.digests.tick(WEEK_END)
            assert result.queued == sum(p.recipients for p in plans)
            for email_id, project_id in queued_digests(url):
                assert project_id is not None
                email: object = rig.app.repository.get(email_id)
                assert isinstance(email, Email)
                assert email.org_id == orgs_of[project_id]
                own = canaries[project_id]
                for body in (email.text, email.html):
                    assert own in body
                    for other, canary in canaries.items():
                        if other != project_id:
                            assert canary not in body, (canary, own)
        finally:
            rig.close()
