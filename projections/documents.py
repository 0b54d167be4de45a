"""Documents list: one row per registered artifact, kept (flagged) after deletion."""

from __future__ import annotations

from typing import Any, ClassVar

from domain.artifact import Artifact
from projections.base import Lookup
from projections.dispatch import EventHandlers, handles
from projections.ops import Batch, Insert, Patch
from projections.records import EventRecord

DOCUMENTS = "documents"


class DocumentRows(EventHandlers):
    """`documents`: name, type, size, hash and tags of each artifact of a project.

    Every change is a pure function of its event (no lookups).
    """

    tables: ClassVar[tuple[str, ...]] = (DOCUMENTS,)

    @handles(Artifact.Registered)
    def _registered(
        self, event: Artifact.Registered, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        out.add(
            Insert(
                DOCUMENTS,
                {
                    "id": record.originator_id,
                    "project_id": record.project_id,
                    "org_id": record.org_id,
                    "name": event.name,
                    "mime": event.mime,
                    "size": event.size,
                    "sha256": event.sha256,
                    "tags": _tags(event.tags),
                    "deleted": False,
                    "created_at": record.occurred_at,
                    "updated_at": record.occurred_at,
                },
            )
        )

    @handles(Artifact.Renamed)
    def _renamed(
        self, event: Artifact.Renamed, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        _patch(record, out, name=event.name)

    @handles(Artifact.Tagged)
    def _tagged(
        self, event: Artifact.Tagged, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        _patch(record, out, tags=_tags(event.tags))

    @handles(Artifact.Deleted)
    def _deleted(
        self, _event: Artifact.Deleted, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        _patch(record, out, deleted=True)


def _patch(record: EventRecord, out: Batch, **changes: Any) -> None:
    out.add(
        Patch(
            DOCUMENTS, {"id": record.originator_id}, {**changes, "updated_at": record.occurred_at}
        )
    )


def _tags(tags: list[str]) -> list[str]:
    # Stored as a jsonb array (the runner writes lists as jsonb); `@>` on it is GIN-indexed.
    return sorted(tags)
