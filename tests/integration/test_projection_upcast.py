"""A RAID history stored in the old untyped shape still loads and projects, on the real store."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import orjson
import psycopg
import pytest
from eventsourcing.persistence import StoredEvent
from psycopg.rows import dict_row

from application.app import Teaim
from domain.raid import RAID_FIELDS, RaidItem, RaidKind, RaidStatus
from domain.roles import Role
from domain.stamps import Stamp
from projections.audit import AuditProjection
from projections.lists import ProjectListsProjection
from projections.notifications import NotificationsProjection
from tests.support.apps import open_app, seed_org
from tests.support.catch_up import catch_up


@pytest.fixture
def app(database_url: str) -> Iterator[Teaim]:
    application = open_app(database_url)
    yield application
    application.close()


def as_version_1(event: StoredEvent, fields: dict[str, Any]) -> StoredEvent:
    """The event as the code before typed fields stored it: `kind` and one `fields` dict."""
    state = orjson.loads(event.state)
    for name in (*RAID_FIELDS, "changed", "class_version"):
        state.pop(name, None)
    state["fields"] = fields
    return dataclasses.replace(event, state=orjson.dumps(state))


def _save_as_version_1(app: Teaim, item: RaidItem, changes: list[dict[str, Any]]) -> None:
    events = [app.mapper.to_stored_event(event) for event in item.collect_events()]
    app.recorder.insert_events(
        [as_version_1(event, fields) for event, fields in zip(events, changes, strict=True)]
    )


def _one(url: str, query: str, *params: object) -> dict[str, Any]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        row = conn.execute(query, params).fetchone()
    assert row is not None, query
    return row


def test_an_old_raid_history_loads_and_projects(app: Teaim, database_url: str) -> None:
    org, project, owner = seed_org(app)
    app.add_member(ctx=owner, project_id=project, user_id="max", role=Role.MEMBER, signer=False)
    stamp = Stamp(org, "owner", "old", datetime.now(UTC), project_id=project)
    created = {"title": "Vendor delay", "owner": "max", "due_date": "2031-04-01"}
    updated = {"severity": "high", "status": "in_progress"}
    item = RaidItem.create(item_id=uuid4(), kind=RaidKind.RISK, fields=created, stamp=stamp)
    item.update(fields=updated, stamp=stamp)
    _save_as_version_1(app, item, [created, updated])
    with psycopg.connect(database_url) as conn:
        states = [
            bytes(row[0])
            for row in conn.execute(
                "SELECT state FROM teaim_events WHERE originator_id = %s"
                " ORDER BY originator_version",
                (item.id,),
            )
        ]
    assert all(b'"fields"' in state and b"class_version" not in state for state in states)

    # The write side loads it (the library upcasts) and carries on with new-shape events.
    loaded = app.get_raid_item(ctx=owner, project_id=project, item_id=item.id)
    assert (loaded.title, loaded.owner, loaded.status) == (
        "Vendor delay",
        "max",
        RaidStatus.IN_PROGRESS,
    )
    app.update_raid_item(ctx=owner, project_id=project, item_id=item.id, fields={"title": "Late"})

    for projection in (ProjectListsProjection(), NotificationsProjection(), AuditProjection()):
        catch_up(database_url, projection)
    row = _one(database_url, "SELECT * FROM raid_items WHERE id = %s", item.id)
    assert (row["title"], row["owner"], row["status"], row["severity"]) == (
        "Late",
        "max",
        "in_progress",
        "high",
    )
    assert str(row["due_date"]) == "2031-04-01"
    told = _one(database_url, "SELECT * FROM notifications WHERE link LIKE %s", f"%{item.id}")
    assert (told["recipient"], told["title"]) == ("max", "Assigned to you: Vendor delay")
    # The feed shows every RAID event in the current shape, old ones included.
    audited = _one(
        database_url,
        "SELECT details FROM audit_events WHERE aggregate_id = %s AND aggregate_version = 1",
        item.id,
    )
    assert audited["details"]["title"] == "Vendor delay"
    assert "fields" not in audited["details"]
