"""Events as projections see them: decoded once, stamps lifted out, payload as plain JSON."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple
from uuid import UUID

import orjson

from projections.events import UnknownEventError, event_class, upcast
from projections.naming import action_name

# Base fields every TEAIM event has, and the library's framing; the rest is the payload.
_STAMP_FIELDS = frozenset(
    {
        "timestamp",
        "org_id",
        "project_id",
        "actor",
        "correlation_id",
        "originator_topic",
        "class_version",
    }
)


class EventRecord(NamedTuple):
    """One stored event, decoded for read models (JSON-friendly payload values).

    A named tuple rather than a frozen dataclass: as immutable, and built several times
    faster, which counts once per event of every catch-up.
    """

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


class UndecodableEventError(Exception):
    """A stored event that cannot be read: a projection must stop on it, never skip it."""

    def __init__(self, position: int, reason: str) -> None:
        super().__init__(f"event at position {position} cannot be decoded: {reason}")
        self.position = position


def decode_event(
    position: int,
    originator_id: UUID,
    originator_version: int,
    topic: str,
    state: bytes,
    *,
    current: bool = False,
) -> EventRecord:
    """Decode a stored event's JSON state without building the domain event object.

    With `current`, a payload stored in an older shape of its class is upcast to the current
    one (read models see one shape per event class); without, it is returned as stored (an
    auditor's replay shows what was recorded).
    """
    try:
        raw: dict[str, Any] = orjson.loads(state)
        payload = {
            key: plain(value) if isinstance(value, dict | list) else value
            for key, value in raw.items()
            if key not in _STAMP_FIELDS
        }
        if current:
            cls = event_class(topic)
            version = raw.get("class_version", 1)
            if version != getattr(cls, "class_version", 1):
                upcast(cls, payload, version)
        project = raw.get("project_id")
        return EventRecord(
            position=position,
            originator_id=originator_id,
            originator_version=originator_version,
            topic=topic,
            action=action_name(topic),
            org_id=_uuid(_unwrapped(raw["org_id"])),
            project_id=None if project is None else _uuid(_unwrapped(project)),
            actor=str(raw["actor"]),
            correlation_id=str(raw["correlation_id"]),
            occurred_at=datetime.fromisoformat(_unwrapped(raw["timestamp"])),
            payload=payload,
        )
    except (
        orjson.JSONDecodeError,
        KeyError,
        ValueError,
        TypeError,
        AttributeError,
        UnknownEventError,
    ) as error:
        raise UndecodableEventError(position, f"{type(error).__name__}: {error}") from error


def plain(value: Any) -> Any:
    """Unwrap the library's typed JSON ({"_type_": ..., "_data_": ...}) into plain JSON values.

    UUIDs become their canonical string, datetimes ISO 8601 strings, value objects dicts.
    """
    if isinstance(value, dict):
        if len(value) == 2 and "_type_" in value and "_data_" in value:
            if value["_type_"] == "map_pairs":
                # A user-keyed map escaped by application.transcodings.TeaimTranscoder.
                return {key: plain(item) for key, item in value["_data_"]}
            data = plain(value["_data_"])
            if value["_type_"] == "uuid_hex":
                return str(_uuid(data))
            return data
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def _unwrapped(value: Any) -> Any:
    # A stamp is a scalar, stored wrapped ({"_type_": "uuid_hex", "_data_": ...}) or not.
    return value["_data_"] if isinstance(value, dict) else value


@lru_cache(maxsize=4096)
def _uuid(text: str) -> UUID:
    # Orgs and projects recur in every event of a batch: parse each id once.
    return UUID(text)
