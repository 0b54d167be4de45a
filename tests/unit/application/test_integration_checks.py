"""Checks through the port: recorded on a fresh aggregate, only while it describes the target."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from uuid import UUID, uuid4

import pytest

from application.app import Teaim
from application.config import AppConfig
from application.connectivity import Probe
from application.integrations import IntegrationChecks, IntegrationFields
from domain.errors import PermissionDeniedError
from domain.integration import (
    CheckReason,
    Integration,
    IntegrationKind,
    IntegrationRoster,
    IntegrationStatus,
    integration_roster_id,
)
from domain.roles import Role
from tests.support.clocks import SettableClock
from tests.support.contexts import service, user
from tests.support.secrets import TokenSecrets
from tests.support.stored import events
from tests.unit.conftest import World


@dataclass
class EditingChecker:
    """Answers ok; while answering, runs `during` once (an edit racing the check)."""

    during: list[object] = field(default_factory=list)
    answer: Probe = field(default_factory=lambda: Probe.passed(7))

    def check(self, kind: IntegrationKind, target: str) -> Probe:
        del kind, target
        while self.during:
            action = self.during.pop()
            assert callable(action)
            action()
        return self.answer


def _register(world: World, target: str = "https://crm.example.com/health") -> UUID:
    return world.app.register_integration(
        ctx=world.alice,
        project_id=world.project_id,
        fields=IntegrationFields(name="CRM", kind=IntegrationKind.HTTP, target=target),
    ).id


def _checked(world: World) -> list[Integration.Checked]:
    return [e for e in events(world.app, 0) if isinstance(e, Integration.Checked)]


def test_check_now_records_the_probe_as_the_caller(world: World) -> None:
    iid = _register(world)
    checker = EditingChecker(answer=Probe.failed(CheckReason.HTTP_5XX, 40))
    outcome = IntegrationChecks(world.app, checker).check_now(
        ctx=world.alice, project_id=world.project_id, integration_id=iid
    )
    assert outcome.recorded
    assert outcome.integration.status.value == "failing"
    [event] = _checked(world)
    assert (event.ok, event.reason, event.latency_ms, event.actor) == (
        False,
        "http_5xx",
        40,
        "alice",
    )


def test_a_check_that_raced_a_new_target_is_answered_but_not_recorded(world: World) -> None:
    iid = _register(world)
    edit = lambda: world.app.update_integration(  # noqa: E731 - the racing edit
        ctx=world.alice,
        project_id=world.project_id,
        integration_id=iid,
        fields=IntegrationFields(target="https://crm2.example.com/"),
    )
    checker = EditingChecker(during=[edit])
    outcome = IntegrationChecks(world.app, checker).check_now(
        ctx=world.alice, project_id=world.project_id, integration_id=iid
    )
    assert outcome.probe.ok
    assert not outcome.recorded
    assert _checked(world) == []


def test_a_check_that_raced_a_removal_or_archiving_is_dropped(world: World) -> None:
    for action in ("remove", "archive"):
        iid = _register(world)

        def race(iid: UUID = iid, action: str = action) -> None:
            if action == "remove":
                world.app.remove_integration(
                    ctx=world.alice, project_id=world.project_id, integration_id=iid
                )
            else:
                world.app.archive_project(ctx=world.alice, project_id=world.project_id)

        outcome = IntegrationChecks(world.app, EditingChecker(during=[race])).check_now(
            ctx=world.alice, project_id=world.project_id, integration_id=iid
        )
        assert not outcome.recorded
    assert _checked(world) == []


def test_the_job_entry_checks_only_what_is_due_in_its_org(world: World) -> None:
    iid = _register(world)
    checks = IntegrationChecks(world.app, EditingChecker())
    assert checks.check_due(org_id=world.org_id, integration_id=iid, run="r") is not None
    # Just checked: due again after the interval (15 minutes by default), not before.
    assert checks.check_due(org_id=world.org_id, integration_id=iid, run="r") is None
    world.clock.advance(timedelta(minutes=15))
    other = checks.check_due(org_id=UUID(int=1), integration_id=iid, run="r")
    assert other is None  # another org's id never reaches this integration
    outcome = checks.check_due(org_id=world.org_id, integration_id=iid, run="r")
    assert outcome is not None
    assert [e.actor for e in _checked(world)] == ["service:integrations"] * 2


@pytest.mark.parametrize("role", [Role.LEAD, Role.MEMBER, Role.GUEST])
def test_below_pm_may_not_check_now(world: World, role: Role) -> None:
    iid = _register(world)
    caller = world.member("bob", role)
    with pytest.raises(PermissionDeniedError):
        IntegrationChecks(world.app, EditingChecker()).check_now(
            ctx=caller, project_id=world.project_id, integration_id=iid
        )
    assert _checked(world) == []


def test_integrations_and_rosters_come_back_whole_from_their_snapshots() -> None:
    app = Teaim(
        {"PERSISTENCE_MODULE": "eventsourcing.popo"},
        clock=SettableClock(),
        secrets=TokenSecrets(),
        audit_log=None,
        config=AppConfig(snapshot_interval=2),
    )
    org = uuid4()
    app.create_org(ctx=service(org), name="Acme")
    alice = user("alice", org, Role.ADMIN, "cid")
    pid = app.create_project(ctx=alice, code="SNAP-1", name="Snap").id
    fields = IntegrationFields(name="CRM", kind=IntegrationKind.HTTP, target="https://a.example/")
    ids = [app.register_integration(ctx=alice, project_id=pid, fields=fields).id for _ in range(3)]
    checks = IntegrationChecks(app, EditingChecker(answer=Probe.failed(CheckReason.TLS, 9)))
    for _ in range(3):
        checks.check_now(ctx=alice, project_id=pid, integration_id=ids[0])
    assert app.snapshots is not None
    assert list(app.snapshots.get(ids[0]))
    roster_id = integration_roster_id(pid)
    assert list(app.snapshots.get(roster_id))
    # Without a cache, every load starts from the newest snapshot.
    integration: object = app.repository.get(ids[0])
    assert isinstance(integration, Integration)
    assert integration.status is IntegrationStatus.FAILING
    assert integration.reason == "tls"
    roster: object = app.repository.get(roster_id)
    assert isinstance(roster, IntegrationRoster)
    assert roster.members == ids
