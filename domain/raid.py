"""RAID log items (risks, actions, issues, decisions) and project memories."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import field
from datetime import date
from enum import StrEnum
from typing import Any, TypeVar
from uuid import UUID

from domain.artifact import normalise_tags
from domain.base import TeaimAggregate
from domain.errors import InvalidValueError, RuleViolationError
from domain.project import validate_name
from domain.stamps import Stamp
from domain.text import check_text


class RaidKind(StrEnum):
    """What a RAID log entry records."""

    RISK = "risk"
    ACTION = "action"
    ISSUE = "issue"
    DECISION = "decision"


class RaidStatus(StrEnum):
    """Progress of a RAID item."""

    OPEN = "open"
    IN_PROGRESS = "in_progress"
    CLOSED = "closed"


class Severity(StrEnum):
    """How bad a risk or issue is."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


T = TypeVar("T")

# Fields a RAID update may change; everything a sign-off package lists per item.
RAID_FIELDS = ("title", "description", "owner", "status", "severity", "due_date", "decided_by")
# What a new item holds for each field it was not given.
CREATED_DEFAULTS: dict[str, Any] = {
    "title": "",
    "description": "",
    "owner": None,
    "status": RaidStatus.OPEN.value,
    "severity": None,
    "due_date": None,
    "decided_by": None,
}


def _check_text(value: str, *, limit: int, what: str) -> str:
    check_text(value, what=what)
    if len(value) > limit:
        raise InvalidValueError(f"{what} must be at most {limit} characters")
    return value.strip()


def _iso_date(value: object) -> date:
    return date.fromisoformat(str(value))


def _parse(parser: Callable[[Any], T], value: object, key: str) -> T:
    # Refusals are DomainErrors: a bare ValueError from an enum or date parser would be a 500
    # for every caller but the HTTP layer's own validation.
    try:
        return parser(value)
    except ValueError:
        raise InvalidValueError(f"invalid {key}", **{key: value}) from None


def _check_raid_fields(kind: RaidKind, fields: dict[str, Any]) -> dict[str, Any]:
    checked: dict[str, Any] = {}
    for key, value in fields.items():
        if key not in RAID_FIELDS:
            raise InvalidValueError(f"unknown RAID field {key!r}")
        if key == "title":
            checked[key] = validate_name(value, what="title")
        elif key == "description":
            checked[key] = _check_text(value, limit=10_000, what="description")
        elif key in ("owner", "decided_by"):
            checked[key] = None if value is None else _check_text(value, limit=200, what=key)
        elif key == "status":
            status = _parse(RaidStatus, value, key)
            if status is RaidStatus.CLOSED:
                raise InvalidValueError("close an item with the close command")
            checked[key] = status.value
        elif key == "severity":
            checked[key] = None if value is None else _parse(Severity, value, key).value
        elif key == "due_date":
            checked[key] = None if value is None else _parse(_iso_date, value, key).isoformat()
    if "decided_by" in checked and checked["decided_by"] and kind is not RaidKind.DECISION:
        raise InvalidValueError("only decisions have decided_by")
    return checked


class RaidItem(TeaimAggregate):
    """One entry of a project's RAID log."""

    project_id: UUID = field(init=False)
    kind: RaidKind = field(init=False)
    title: str = field(init=False)
    description: str = field(init=False)
    owner: str | None = field(init=False)
    status: RaidStatus = field(init=False)
    severity: Severity | None = field(init=False)
    due_date: str | None = field(init=False)
    decided_by: str | None = field(init=False)
    resolution: str | None = field(init=False)

    class Created(TeaimAggregate.Created):
        """A new item with every field it starts with (unset ones at their defaults)."""

        # Version 1 carried the fields in one untyped `fields` dict; see upcast_v1_v2.
        class_version = 2

        kind: str
        title: str
        description: str
        owner: str | None
        status: str
        severity: str | None
        due_date: str | None
        decided_by: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """`fields` (only the fields given) -> one typed field each, defaults for the rest."""
            state.update({**CREATED_DEFAULTS, **state.pop("fields")})

        def apply(self, item: RaidItem) -> None:
            assert self.project_id is not None
            item.project_id = self.project_id
            item.kind = RaidKind(self.kind)
            item.resolution = None
            item._set({name: getattr(self, name) for name in RAID_FIELDS})

    class Updated(TeaimAggregate.Event):
        """Some fields changed: `changed` names them; the others are None here."""

        # Version 1 carried the changes in one untyped `fields` dict; see upcast_v1_v2.
        class_version = 2

        changed: list[str]
        title: str | None
        description: str | None
        owner: str | None
        status: str | None
        severity: str | None
        due_date: str | None
        decided_by: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """`fields` (only the changed fields) -> `changed` plus one typed field each."""
            fields = state.pop("fields")
            state["changed"] = [name for name in RAID_FIELDS if name in fields]
            state.update({name: fields.get(name) for name in RAID_FIELDS})

        @property
        def fields(self) -> dict[str, Any]:
            """The changed fields and their new values (None clears owner, severity...)."""
            return {name: getattr(self, name) for name in self.changed}

        def apply(self, item: RaidItem) -> None:
            item._set(self.fields)

    class Closed(TeaimAggregate.Event):
        resolution: str

        def apply(self, item: RaidItem) -> None:
            item.status = RaidStatus.CLOSED
            item.resolution = self.resolution

    class Reopened(TeaimAggregate.Event):
        def apply(self, item: RaidItem) -> None:
            item.status = RaidStatus.OPEN
            item.resolution = None

    @classmethod
    def create(
        cls, *, item_id: UUID, kind: RaidKind, fields: dict[str, Any], stamp: Stamp
    ) -> RaidItem:
        """Log a new item in the stamp's project."""
        if stamp.project_id is None:
            raise InvalidValueError("a RAID item belongs to a project")
        if "title" not in fields:
            raise InvalidValueError("a RAID item needs a title")
        item: RaidItem = cls._create_stamped(
            cls.Created,
            id=item_id,
            stamp=stamp,
            kind=kind.value,
            **{**CREATED_DEFAULTS, **_check_raid_fields(kind, fields)},
        )
        return item

    def update(self, *, fields: dict[str, Any], stamp: Stamp) -> None:
        """Change some fields of an open item."""
        if self.status is RaidStatus.CLOSED:
            raise RuleViolationError("item is closed; reopen it first", item_id=self.id)
        checked = _check_raid_fields(self.kind, fields)
        changed = {k: v for k, v in checked.items() if self._current(k) != v}
        if changed:
            self._trigger(
                self.Updated,
                stamp,
                changed=[name for name in RAID_FIELDS if name in changed],
                **{name: changed.get(name) for name in RAID_FIELDS},
            )

    def close(self, *, resolution: str, stamp: Stamp) -> None:
        """Close the item with how it was resolved."""
        if self.status is RaidStatus.CLOSED:
            raise RuleViolationError("item is already closed", item_id=self.id)
        self._trigger(
            self.Closed, stamp, resolution=_check_text(resolution, limit=2000, what="resolution")
        )

    def reopen(self, *, stamp: Stamp) -> None:
        """Open a closed item again."""
        if self.status is not RaidStatus.CLOSED:
            raise RuleViolationError("item is not closed", item_id=self.id)
        self._trigger(self.Reopened, stamp)

    def _current(self, key: str) -> Any:
        value = getattr(self, key)
        return value.value if isinstance(value, StrEnum) else value

    def _set(self, fields: dict[str, Any]) -> None:
        for key, value in fields.items():
            if key == "status":
                self.status = RaidStatus(value)
            elif key == "severity":
                self.severity = None if value is None else Severity(value)
            else:
                setattr(self, key, value)


class Memory(TeaimAggregate):
    """Something the project should remember (a fact, a preference, a lesson)."""

    project_id: UUID = field(init=False)
    title: str = field(init=False)
    body: str = field(init=False)
    tags: list[str] = field(init=False)
    closed: bool = field(init=False)

    class Created(TeaimAggregate.Created):
        title: str
        body: str
        tags: list[str]

        def apply(self, memory: Memory) -> None:
            assert self.project_id is not None
            memory.project_id = self.project_id
            memory.title = self.title
            memory.body = self.body
            memory.tags = list(self.tags)
            memory.closed = False

    class Updated(TeaimAggregate.Event):
        title: str
        body: str
        tags: list[str]

        def apply(self, memory: Memory) -> None:
            memory.title = self.title
            memory.body = self.body
            memory.tags = list(self.tags)

    class Closed(TeaimAggregate.Event):
        def apply(self, memory: Memory) -> None:
            memory.closed = True

    @classmethod
    def create(
        cls, *, memory_id: UUID, title: str, body: str, tags: list[str], stamp: Stamp
    ) -> Memory:
        """Record a memory in the stamp's project."""
        if stamp.project_id is None:
            raise InvalidValueError("a memory belongs to a project")
        memory: Memory = cls._create_stamped(
            cls.Created,
            id=memory_id,
            stamp=stamp,
            title=validate_name(title, what="title"),
            body=_check_text(body, limit=20_000, what="body"),
            tags=_memory_tags(tags),
        )
        return memory

    def update(
        self, *, title: str | None, body: str | None, tags: list[str] | None, stamp: Stamp
    ) -> None:
        """Change the memory's text or tags."""
        if self.closed:
            raise RuleViolationError("memory is closed", memory_id=self.id)
        new_title = self.title if title is None else validate_name(title, what="title")
        new_body = self.body if body is None else _check_text(body, limit=20_000, what="body")
        new_tags = self.tags if tags is None else _memory_tags(tags)
        if (new_title, new_body, new_tags) != (self.title, self.body, self.tags):
            self._trigger(self.Updated, stamp, title=new_title, body=new_body, tags=new_tags)

    def close(self, *, stamp: Stamp) -> None:
        """Retire the memory: it no longer applies."""
        if self.closed:
            raise RuleViolationError("memory is already closed", memory_id=self.id)
        self._trigger(self.Closed, stamp)


def _memory_tags(tags: list[str]) -> list[str]:
    # Memories and documents share one tag vocabulary, so they share its rules.
    # Blank entries are dropped, as memories always did (free-text tag fields leave them).
    return normalise_tags([t for t in tags if t.strip()])
