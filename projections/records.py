"""Events as projections see them: decoded once, stamps lifted out, payload as plain JSON."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson

from projections.naming import action_name

# Base fields every TEAIM event has; everything else is the event's own payload.
_STAMP_FIELDS = frozenset(
    {"timestamp", "org_id", "project_id", "actor", "correlation_id", "originator_topic"}
)


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One stored event, decoded for read models (JSON-friendly payload values)."""

    position: int
    originator_id: UUID
    originator_version: int
    topic: str
    action: str
    org_id: UUID
    project_id: UUID | None
    actor: str
    correlation_id: str
    occurred_at: datetime
    payload: dict[str, Any]

    @property
    def aggregate(self) -> str:
        """The aggregate class name (`Stage`, `Project`...)."""
        return self.topic.rpartition(":")[2].split(".")[0]

    @property
    def event(self) -> str:
        """The event class name (`SignedOff`, `MemberAdded`...)."""
        return self.topic.rpartition(".")[2]


class UndecodableEventError(Exception):
    """A stored event that cannot be read: a projection must stop on it, never skip it."""

    def __init__(self, position: int, reason: str) -> None:
        super().__init__(f"event at position {position} cannot be decoded: {reason}")
        self.position = position


def decode_event(
    position: int, originator_id: UUID, originator_version: int, topic: str, state: bytes
) -> EventRecord:
    """Decode a stored event's JSON state without resolving its Python class.

    Read models run on the log, not on the domain's classes: a projection reads an old
    event even after its class moved, and decoding stays a JSON parse plus a walk.
    """
    try:
        raw = orjson.loads(state)
        fields = {key: plain(value) for key, value in raw.items()}
        org_id = UUID(fields["org_id"])
        project = fields.get("project_id")
        return EventRecord(
            position=position,
            originator_id=originator_id,
            originator_version=originator_version,
            topic=topic,
            action=action_name(topic),
            org_id=org_id,
            project_id=None if project is None else UUID(project),
            actor=str(fields["actor"]),
            correlation_id=str(fields["correlation_id"]),
            occurred_at=datetime.fromisoformat(fields["timestamp"]),
            payload={k: v for k, v in fields.items() if k not in _STAMP_FIELDS},
        )
    except (orjson.JSONDecodeError, KeyError, ValueError, TypeError, AttributeError) as error:
        raise UndecodableEventError(position, f"{type(error).__name__}: {error}") from error


def plain(value: Any) -> Any:
    """Unwrap the library's typed JSON ({"_type_": ..., "_data_": ...}) into plain JSON values.

    UUIDs become their canonical string, datetimes ISO 8601 strings, value objects dicts.
    """
    if isinstance(value, dict):
        if len(value) == 2 and "_type_" in value and "_data_" in value:
            data = plain(value["_data_"])
            if value["_type_"] == "uuid_hex":
                return str(UUID(data))
            return data
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value
