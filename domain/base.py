"""The aggregate and event base every TEAIM aggregate builds on."""

from __future__ import annotations

from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.stamps import Stamp


class TeaimAggregate(Aggregate):
    """An aggregate whose every event is stamped with tenant, project, actor and request."""

    # Aggregates that live outside any project (org settings, denials) say so.
    PROJECT_SCOPED: ClassVar[bool] = True

    class Event(Aggregate.Event):
        """An event carrying the stamps the audit trail and tenant isolation rely on."""

        org_id: UUID
        project_id: UUID | None
        actor: str
        correlation_id: str

    class Created(Event, Aggregate.Created):
        """The first event of a stamped aggregate."""

    @classmethod
    def _create_stamped(
        cls, event_class: type[Aggregate.Created], *, id: UUID, stamp: Stamp, **fields: Any
    ) -> Any:
        return cls._create(event_class, id=id, timestamp=stamp.at, **_stamp_fields(stamp), **fields)

    def _trigger(self, event_class: type[Aggregate.Event], stamp: Stamp, **fields: Any) -> None:
        self.trigger_event(event_class, timestamp=stamp.at, **_stamp_fields(stamp), **fields)


def _stamp_fields(stamp: Stamp) -> dict[str, Any]:
    return {
        "org_id": stamp.org_id,
        "project_id": stamp.project_id,
        "actor": stamp.actor,
        "correlation_id": stamp.correlation_id,
    }
