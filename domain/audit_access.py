"""Reads of the audit feed: reading the record is itself on the record."""

from __future__ import annotations

from dataclasses import field
from uuid import UUID

from domain.base import TeaimAggregate
from domain.errors import InvalidValueError
from domain.stamps import Stamp
from domain.text import check_line

# How the feed was read: a page of the list, or a streamed export (with its format); and how
# an org auditor read a project's raw history (replay, verify, as-of).
READ_KINDS = frozenset({"list", "export:csv", "export:ndjson", "replay", "verify", "as_of"})
# Filters are echoed into the event (and so into the feed's own full-text index): bound them.
MAX_FILTERS = 20
MAX_FILTER_LENGTH = 500


class AuditAccess(TeaimAggregate):
    """One read of the audit feed (audit action `audit.read`)."""

    # Org-wide reads carry no project; a read filtered to one project is stamped with it.
    PROJECT_SCOPED = False

    kind: str = field(init=False)
    filters: dict[str, str] = field(init=False)
    count: int | None = field(init=False)

    class Recorded(TeaimAggregate.Created):
        kind: str
        filters: dict[str, str]
        count: int | None

        def apply(self, access: AuditAccess) -> None:
            access.kind = self.kind
            access.filters = dict(self.filters)
            access.count = self.count

    @classmethod
    def record(
        cls,
        *,
        access_id: UUID,
        kind: str,
        filters: dict[str, str],
        count: int | None,
        stamp: Stamp,
    ) -> AuditAccess:
        """Record one read with the filters it used and, when known, how many rows it returned."""
        if kind not in READ_KINDS:
            raise InvalidValueError("unknown audit read kind", kind=kind)
        if count is not None and count < 0:
            raise InvalidValueError("a read returns a non-negative number of rows", count=count)
        if len(filters) > MAX_FILTERS:
            raise InvalidValueError("too many filters")
        for key, value in filters.items():
            # A NUL here would be recorded and then stop the audit feed for every tenant.
            check_line(str(key), what="filter name")
            check_line(str(value), what="filter value")
        access: AuditAccess = cls._create_stamped(
            cls.Recorded,
            id=access_id,
            stamp=stamp,
            kind=kind,
            filters={
                str(key)[:100]: str(value)[:MAX_FILTER_LENGTH]
                for key, value in sorted(filters.items())
            },
            count=count,
        )
        return access
