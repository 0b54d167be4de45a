"""The snapshot registry: every domain aggregate is in it, and the configured interval applies."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from uuid import UUID, uuid4

import pytest
from eventsourcing.domain import BaseAggregate
from hypothesis import given, settings
from hypothesis import strategies as st

import domain
from application.app import Teaim
from application.config import AppConfig
from application.snapshots import CHANGING, SEALS, WRITTEN_ONCE
from domain.base import TeaimAggregate
from domain.inbox import Inbox, Mark
from domain.project import Project
from domain.roles import Role
from domain.seal import ProjectSeal
from tests.support.apps import IN_MEMORY
from tests.support.clocks import SettableClock
from tests.support.contexts import service, user
from tests.support.secrets import TokenSecrets
from tests.support.stored import fold, state


def app_with(config: AppConfig) -> Teaim:
    """An in-memory application with this config."""
    return Teaim(
        IN_MEMORY, clock=SettableClock(), secrets=TokenSecrets(), audit_log=None, config=config
    )


def domain_aggregates() -> set[type[BaseAggregate[UUID]]]:
    """Every aggregate class the `domain` package defines, found by walking its modules."""
    found: set[type[BaseAggregate[UUID]]] = set()
    for module_info in pkgutil.walk_packages(domain.__path__, prefix="domain."):
        module = importlib.import_module(module_info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(cls, BaseAggregate)
                and cls.__module__ == module.__name__
                and cls is not TeaimAggregate
            ):
                found.add(cls)
    return found


def snapshot_versions(app: Teaim, aggregate_id: UUID) -> list[int]:
    """The versions at which the application stored a snapshot of the aggregate."""
    assert app.snapshots is not None
    return [snapshot.originator_version for snapshot in app.snapshots.get(aggregate_id)]


def project_with_renames(app: Teaim, renames: int) -> UUID:
    """A project (version 1) renamed `renames` times: it ends at version renames + 1."""
    org = uuid4()
    app.create_org(ctx=service(org), name="Acme")
    alice = user("alice", org, Role.ADMIN)
    project_id = app.create_project(ctx=alice, code="ACME-1", name="Portal").id
    for n in range(renames):
        app.rename_project(ctx=alice, project_id=project_id, name=f"Portal {n}")
    return project_id


def test_every_domain_aggregate_is_in_the_registry_once() -> None:
    # The walk itself must see the aggregates we know of, or it proves nothing.
    aggregates = domain_aggregates()
    assert {Project, Inbox, ProjectSeal} <= aggregates
    listed = [*CHANGING, *SEALS, *WRITTEN_ONCE]
    assert len(listed) == len(set(listed)), "an aggregate is listed twice"
    missing = {cls.__qualname__ for cls in aggregates - set(listed)}
    assert missing == set(), f"add these aggregates to application/snapshots.py: {missing}"
    assert set(listed) <= aggregates


@pytest.mark.parametrize("aggregate", WRITTEN_ONCE, ids=lambda cls: cls.__qualname__)
def test_aggregates_left_unsnapshotted_only_have_their_creation_event(
    aggregate: type[TeaimAggregate],
) -> None:
    # An event that changes such an aggregate after creation means its history can grow:
    # it must move to CHANGING and be snapshotted.
    events = {
        name
        for name, member in vars(aggregate).items()
        if isinstance(member, type) and issubclass(member, TeaimAggregate.Event)
    }
    assert events
    # `Event` is the per-class base the library derives for every aggregate; no event is it.
    later = {
        name
        for name in events - {"Event"}
        if not issubclass(vars(aggregate)[name], TeaimAggregate.Created)
    }
    assert later == set()


def test_the_application_snapshots_exactly_the_registry_at_the_configured_intervals() -> None:
    app = app_with(AppConfig(snapshot_interval=7, seal_snapshot_interval=3))
    assert app.snapshotting_intervals == {
        **dict.fromkeys(CHANGING, 7),
        **dict.fromkeys(SEALS, 3),
    }
    assert app.snapshots is not None


def test_each_application_reads_its_own_config() -> None:
    # The interval used to be fixed when the module was imported: two applications with
    # different configs in one process must not share it.
    small, default = app_with(AppConfig(snapshot_interval=2)), app_with(AppConfig())
    assert small.snapshotting_intervals[Project] == 2
    assert default.snapshotting_intervals[Project] == AppConfig().snapshot_interval == 50
    assert "snapshotting_intervals" not in vars(Teaim)


def test_a_small_interval_takes_snapshots_at_that_interval() -> None:
    app = app_with(AppConfig(snapshot_interval=3))
    project_id = project_with_renames(app, 7)  # versions 1..8
    assert snapshot_versions(app, project_id) == [3, 6]
    # A load starts from the newest snapshot and still gives the folded state.
    loaded: object = app.repository.get(project_id)
    assert isinstance(loaded, Project)
    assert loaded.version == 8
    assert state(loaded) == state(fold(app, project_id))


def test_the_default_interval_takes_no_snapshot_of_a_short_history() -> None:
    app = app_with(AppConfig())
    project_id = project_with_renames(app, 7)
    assert snapshot_versions(app, project_id) == []


def test_an_inbox_is_snapshotted_at_the_configured_interval() -> None:
    app = app_with(AppConfig(snapshot_interval=2))
    org = uuid4()
    bob = user("bob", org)
    first = app.mark_notification(ctx=bob, notification_id=uuid4(), mark=Mark.READ)
    for _ in range(4):
        app.mark_notification(ctx=bob, notification_id=uuid4(), mark=Mark.READ)
    # Opened and the first mark are saved together (version 2), then one version per mark.
    assert snapshot_versions(app, first.id) == [2, 4, 6]


@settings(max_examples=25, deadline=None)
@given(
    interval=st.integers(min_value=1, max_value=6), renames=st.integers(min_value=0, max_value=14)
)
def test_snapshots_fall_on_every_multiple_of_the_interval(interval: int, renames: int) -> None:
    app = app_with(AppConfig(snapshot_interval=interval))
    project_id = project_with_renames(app, renames)
    last = renames + 1
    assert snapshot_versions(app, project_id) == list(range(interval, last + 1, interval))


@pytest.mark.parametrize("field", ["snapshot_interval", "seal_snapshot_interval"])
@pytest.mark.parametrize("value", [0, -1])
def test_an_interval_below_one_is_refused(field: str, value: int) -> None:
    with pytest.raises(ValueError, match=f"{field} must be at least 1"):
        AppConfig(**{field: value})  # type: ignore[arg-type]
