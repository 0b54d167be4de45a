"""Maps domain events to stored events that carry their tenant stamps in columns."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper, StoredEvent

from application.stored import StampedStoredEvent
from domain.base import TeaimAggregate


class MissingStampError(Exception):
    """An event reached the store without the org it belongs to."""


class StampingMapper(Mapper[UUID]):
    """Copies org and project stamps next to the serialised event, so the store can index them."""

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        """Serialise an event; refuse a TEAIM event without its org stamp."""
        stored = super().to_stored_event(domain_event)
        if not isinstance(domain_event, TeaimAggregate.Event):
            # Snapshots go to their own table and are not part of the audited log.
            return stored
        org_id = getattr(domain_event, "org_id", None)
        if not isinstance(org_id, UUID):
            raise MissingStampError(f"{type(domain_event).__qualname__} has no org_id stamp")
        if not getattr(domain_event, "actor", None) or not getattr(
            domain_event, "correlation_id", None
        ):
            raise MissingStampError(
                f"{type(domain_event).__qualname__} has no actor or correlation id stamp"
            )
        return StampedStoredEvent(
            originator_id=stored.originator_id,
            originator_version=stored.originator_version,
            topic=stored.topic,
            state=stored.state,
            org_id=org_id,
            project_id=domain_event.project_id,
        )
