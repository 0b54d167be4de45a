"""RAID events stored before their fields were typed still load, decode and project."""

from __future__ import annotations

import dataclasses
from typing import Any
from uuid import uuid4

import orjson
from eventsourcing.persistence import StoredEvent

from domain.raid import RAID_FIELDS, RaidItem, RaidKind
from projections.lists import ProjectListsProjection
from projections.notifications import NotificationsProjection
from projections.records import decode_event
from tests.unit.conftest import make_stamp
from tests.unit.projections.support import MAPPER, project, record_from, stored


def as_version_1(event: StoredEvent, fields: dict[str, Any]) -> StoredEvent:
    """The event as the code before typed fields stored it: `kind` and one `fields` dict."""
    state = orjson.loads(event.state)
    for name in (*RAID_FIELDS, "changed", "class_version"):
        state.pop(name, None)
    state["fields"] = fields
    return dataclasses.replace(event, state=orjson.dumps(state))


def _history() -> tuple[list[StoredEvent], list[StoredEvent]]:
    """One item's events as stored today, and as version 1 stored them."""
    stamp = make_stamp(project_id=uuid4())
    created = {"title": "Vendor delay", "owner": "max", "due_date": "2031-04-01"}
    item = RaidItem.create(item_id=uuid4(), kind=RaidKind.RISK, fields=created, stamp=stamp)
    updated = {"severity": "high", "owner": None}
    item.update(fields=updated, stamp=stamp)
    current = [stored(event) for event in item.collect_events()]
    return current, [as_version_1(current[0], created), as_version_1(current[1], updated)]


def test_an_old_event_loads_with_typed_fields() -> None:
    current, old = _history()
    assert b'"fields"' in old[0].state
    assert b"class_version" not in old[0].state
    created = MAPPER.to_domain_event(old[0])
    assert isinstance(created, RaidItem.Created)
    assert (created.title, created.owner, created.due_date) == ("Vendor delay", "max", "2031-04-01")
    assert (created.description, created.status, created.severity) == ("", "open", None)
    updated = MAPPER.to_domain_event(old[1])
    assert isinstance(updated, RaidItem.Updated)
    assert updated.changed == ["owner", "severity"]
    assert updated.fields == {"owner": None, "severity": "high"}
    # The aggregate folded from old events equals the one folded from today's.
    assert vars(_fold(old)) == vars(_fold(current))


def _fold(events: list[StoredEvent]) -> RaidItem:
    item: Any = None
    for event in events:
        item = MAPPER.to_domain_event(event).mutate(item)  # type: ignore[attr-defined]
    assert isinstance(item, RaidItem)
    return item


def test_projections_see_an_old_event_in_the_current_shape() -> None:
    current, old = _history()
    for now, then in zip(current, old, strict=True):
        assert record_from(then, 1).payload == record_from(now, 1).payload
    # An auditor's replay shows what was stored.
    raw = decode_event(1, old[0].originator_id, 1, old[0].topic, old[0].state)  # type: ignore[arg-type]
    assert raw.payload["fields"] == {
        "title": "Vendor delay",
        "owner": "max",
        "due_date": "2031-04-01",
    }


def test_an_old_history_projects_the_same_rows_as_a_current_one() -> None:
    current, old = _history()
    for projection in (ProjectListsProjection, NotificationsProjection):
        from_current = project(projection(), [record_from(e, n) for n, e in enumerate(current)])
        from_old = project(projection(), [record_from(e, n) for n, e in enumerate(old)])
        assert from_old.ops == from_current.ops
        assert from_current.ops
