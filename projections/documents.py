"""Documents list: one row per registered artifact, kept (flagged) after deletion."""

from __future__ import annotations

from typing import Any, ClassVar

from projections.base import Lookup
from projections.ops import Batch, Insert, Patch
from projections.records import EventRecord

DOCUMENTS = "documents"


class DocumentRows:
    """`documents`: name, type, size, hash and tags of each artifact of a project."""

    aggregates: ClassVar[frozenset[str]] = frozenset({"Artifact"})
    tables: ClassVar[tuple[str, ...]] = (DOCUMENTS,)

    def handle(self, record: EventRecord, out: Batch, lookup: Lookup) -> None:
        """Apply one Artifact event; every change is a pure function of the event."""
        del lookup
        p = record.payload
        if record.event == "Registered":
            out.add(
                Insert(
                    DOCUMENTS,
                    {
                        "id": record.originator_id,
                        "project_id": record.project_id,
                        "org_id": record.org_id,
                        "name": p["name"],
                        "mime": p["mime"],
                        "size": p["size"],
                        "sha256": p["sha256"],
                        "tags": _tags(p["tags"]),
                        "deleted": False,
                        "created_at": record.occurred_at,
                        "updated_at": record.occurred_at,
                    },
                )
            )
        elif record.event == "Renamed":
            self._patch(record, out, name=p["name"])
        elif record.event == "Tagged":
            self._patch(record, out, tags=_tags(p["tags"]))
        elif record.event == "Deleted":
            self._patch(record, out, deleted=True)

    def _patch(self, record: EventRecord, out: Batch, **changes: Any) -> None:
        out.add(
            Patch(
                DOCUMENTS,
                {"id": record.originator_id},
                {**changes, "updated_at": record.occurred_at},
            )
        )


def _tags(tags: list[str]) -> list[str]:
    # Stored as a jsonb array (the runner writes lists as jsonb); `@>` on it is GIN-indexed.
    return sorted(tags)
