"""RAID log items and project memories: create, update, close, reopen."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import uuid4

import pytest

from domain.errors import InvalidValueError, RuleViolationError
from domain.raid import Memory, RaidItem, RaidKind, RaidStatus, Severity
from domain.stamps import Stamp
from tests.unit.conftest import World, make_stamp


def new_item(kind: RaidKind = RaidKind.RISK, **fields: Any) -> tuple[RaidItem, Stamp]:
    stamp = make_stamp(project_id=uuid4())
    item = RaidItem.create(
        item_id=uuid4(), kind=kind, fields={"title": "Vendor delay", **fields}, stamp=stamp
    )
    item.collect_events()
    return item, stamp


def new_memory(**overrides: Any) -> tuple[Memory, Stamp]:
    stamp = make_stamp(project_id=uuid4())
    args: dict[str, Any] = {"title": "Client prefers email", "body": "", "tags": []}
    args.update(overrides)
    memory = Memory.create(memory_id=uuid4(), stamp=stamp, **args)
    memory.collect_events()
    return memory, stamp


# RAID -----------------------------------------------------------------------------------


def test_a_new_item_is_open_with_typed_fields() -> None:
    item, stamp = new_item(
        RaidKind.ISSUE, description=" late ", owner=" bob ", severity="high", due_date="2026-03-01"
    )
    assert (item.kind, item.status, item.severity) == (
        RaidKind.ISSUE,
        RaidStatus.OPEN,
        Severity.HIGH,
    )
    assert (item.title, item.description, item.owner) == ("Vendor delay", "late", "bob")
    assert (item.due_date, item.decided_by, item.resolution) == ("2026-03-01", None, None)
    assert item.project_id == stamp.project_id


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"title": " "},
        {"title": "T", "colour": "red"},
        {"title": "T", "status": "closed"},
        {"title": "T", "description": "x" * 10_001},
        {"title": "T", "owner": "o" * 201},
        {"title": "T", "decided_by": "ceo"},
        {"title": "T", "status": "someday"},
        {"title": "T", "severity": "apocalyptic"},
        {"title": "T", "due_date": "next tuesday"},
        {"title": "T", "due_date": "2026-02-30"},
    ],
)
def test_invalid_items_are_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(InvalidValueError):
        RaidItem.create(
            item_id=uuid4(), kind=RaidKind.RISK, fields=fields, stamp=make_stamp(project_id=uuid4())
        )


@pytest.mark.parametrize(
    "fields", [{"status": "someday"}, {"severity": "apocalyptic"}, {"due_date": "2026-13-01"}]
)
def test_bad_enum_or_date_values_on_update_are_invalid_values(fields: dict[str, Any]) -> None:
    item, stamp = new_item()
    with pytest.raises(InvalidValueError, match=r"invalid (status|severity|due_date)"):
        item.update(fields=fields, stamp=stamp)
    assert item.collect_events() == []


def test_due_dates_are_normalised_to_iso_dates() -> None:
    item, stamp = new_item(due_date=date(2026, 3, 1))
    assert item.due_date == "2026-03-01"
    item.update(fields={"due_date": None}, stamp=stamp)
    assert item.due_date is None


def test_an_item_needs_a_project() -> None:
    with pytest.raises(InvalidValueError, match="a RAID item belongs to a project"):
        RaidItem.create(
            item_id=uuid4(), kind=RaidKind.RISK, fields={"title": "T"}, stamp=make_stamp()
        )


def test_decided_by_only_on_decisions() -> None:
    decision, _ = new_item(RaidKind.DECISION, decided_by="steering board")
    assert decision.decided_by == "steering board"
    for kind in (RaidKind.RISK, RaidKind.ACTION, RaidKind.ISSUE):
        item, stamp = new_item(kind)
        with pytest.raises(InvalidValueError, match="only decisions have decided_by"):
            item.update(fields={"decided_by": "ceo"}, stamp=stamp)
        item.update(fields={"decided_by": None}, stamp=stamp)  # clearing is harmless
        assert item.decided_by is None


def test_update_changes_only_what_differs() -> None:
    item, stamp = new_item(severity="low")
    item.update(fields={"title": "Vendor delay", "severity": "low"}, stamp=stamp)
    assert item.collect_events() == []
    item.update(
        fields={"title": "Vendor delay", "status": "in_progress", "severity": "critical"},
        stamp=stamp,
    )
    [updated] = item.collect_events()
    assert isinstance(updated, RaidItem.Updated)
    assert updated.fields == {"status": "in_progress", "severity": "critical"}
    assert (item.status, item.severity) == (RaidStatus.IN_PROGRESS, Severity.CRITICAL)


def test_items_are_closed_by_the_close_command_only() -> None:
    item, stamp = new_item()
    with pytest.raises(InvalidValueError, match="close an item with the close command"):
        item.update(fields={"status": "closed"}, stamp=stamp)
    item.close(resolution=" mitigated ", stamp=stamp)
    assert (item.status, item.resolution) == (RaidStatus.CLOSED, "mitigated")


def test_a_closed_item_refuses_updates_and_a_second_close() -> None:
    item, stamp = new_item()
    item.close(resolution="done", stamp=stamp)
    item.collect_events()
    with pytest.raises(RuleViolationError, match="item is closed; reopen it first"):
        item.update(fields={"title": "New"}, stamp=stamp)
    with pytest.raises(RuleViolationError, match="item is already closed"):
        item.close(resolution="again", stamp=stamp)
    assert item.collect_events() == []


def test_reopen_only_a_closed_item_and_it_forgets_the_resolution() -> None:
    item, stamp = new_item()
    with pytest.raises(RuleViolationError, match="item is not closed"):
        item.reopen(stamp=stamp)
    item.close(resolution="done", stamp=stamp)
    item.reopen(stamp=stamp)
    assert (item.status, item.resolution) == (RaidStatus.OPEN, None)
    item.update(fields={"title": "Back again"}, stamp=stamp)
    assert item.title == "Back again"


def test_raid_lifecycle_through_the_application(world: World) -> None:
    app, alice, pid = world.app, world.alice, world.project_id
    item_id = app.create_raid_item(
        ctx=alice, project_id=pid, kind=RaidKind.DECISION, fields={"title": "Use SSO"}
    ).id
    app.update_raid_item(ctx=alice, project_id=pid, item_id=item_id, fields={"decided_by": "CTO"})
    app.close_raid_item(ctx=alice, project_id=pid, item_id=item_id, resolution="agreed")
    with pytest.raises(RuleViolationError, match="item is closed; reopen it first"):
        app.update_raid_item(ctx=alice, project_id=pid, item_id=item_id, fields={"title": "X"})
    app.reopen_raid_item(ctx=alice, project_id=pid, item_id=item_id)
    item = app.get_raid_item(ctx=alice, project_id=pid, item_id=item_id)
    assert (item.kind, item.status, item.decided_by) == (RaidKind.DECISION, RaidStatus.OPEN, "CTO")


# Memories -------------------------------------------------------------------------------


def test_a_memory_normalises_its_tags() -> None:
    memory, stamp = new_memory(tags=[" Client ", "client", "", "  ", "Comms"])
    assert memory.tags == ["client", "comms"]
    assert memory.project_id == stamp.project_id
    assert not memory.closed


@pytest.mark.parametrize(
    "overrides",
    [
        {"title": ""},
        {"body": "b" * 20_001},
        {"tags": ["x" * 49]},
        {"tags": [f"t{i}" for i in range(33)]},
    ],
)
def test_invalid_memories_are_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(InvalidValueError):
        new_memory(**overrides)


def test_a_memory_needs_a_project() -> None:
    with pytest.raises(InvalidValueError, match="a memory belongs to a project"):
        Memory.create(memory_id=uuid4(), title="T", body="", tags=[], stamp=make_stamp())


def test_memory_update_is_partial_and_skips_no_change() -> None:
    memory, stamp = new_memory(body="old", tags=["a"])
    memory.update(title=None, body="old", tags=["A"], stamp=stamp)
    assert memory.collect_events() == []
    memory.update(title=None, body="new", tags=None, stamp=stamp)
    assert (memory.title, memory.body, memory.tags) == ("Client prefers email", "new", ["a"])
    assert len(memory.collect_events()) == 1


def test_a_closed_memory_refuses_changes() -> None:
    memory, stamp = new_memory()
    memory.close(stamp=stamp)
    assert memory.closed
    with pytest.raises(RuleViolationError, match="memory is closed"):
        memory.update(title="New", body=None, tags=None, stamp=stamp)
    with pytest.raises(RuleViolationError, match="memory is already closed"):
        memory.close(stamp=stamp)


def test_memory_lifecycle_through_the_application(world: World) -> None:
    app, alice, pid = world.app, world.alice, world.project_id
    memory_id = app.create_memory(ctx=alice, project_id=pid, title="Fact", body="b", tags=["X"]).id
    app.update_memory(ctx=alice, project_id=pid, memory_id=memory_id, title="Fact 2")
    app.close_memory(ctx=alice, project_id=pid, memory_id=memory_id)
    memory = app.get_memory(ctx=alice, project_id=pid, memory_id=memory_id)
    assert (memory.title, memory.body, memory.tags, memory.closed) == ("Fact 2", "b", ["x"], True)
    with pytest.raises(RuleViolationError, match="memory is closed"):
        app.update_memory(ctx=alice, project_id=pid, memory_id=memory_id, body="c")
