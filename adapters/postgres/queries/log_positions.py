"""A moment to a log position, for retrieval `as_of` a time: read from the audit read model.

`audit_events` holds one row per event with its position, project and stamp time
(`occurred_at`, the time the event itself carries, which is what the project's as-of view
folds by). The position of the project's last event stamped at or before the moment is the
log cut that search then uses: chunk rows of the project only change at the project's own
events, so that cut is exactly what was retrievable at the moment.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from adapters.postgres.read_db import ReadDatabase

# Walks the project's rows newest first (audit_events_project_position) to the first one at
# or before the moment; the read pool's statement timeout bounds a walk into a long history.
_POSITION_AT = (
    "SELECT position FROM audit_events"
    " WHERE project_id = %s AND org_id = %s AND occurred_at <= %s"
    " ORDER BY position DESC LIMIT 1"
)


class PostgresLogPositions:
    """`application.retrieval.LogPositions` over `audit_events`, read as the RLS-bound role."""

    def __init__(self, read_db: ReadDatabase) -> None:
        self._db = read_db

    def position_at(self, org_id: UUID, project_id: UUID, at: datetime) -> int:
        """The position of the project's last event stamped at or before `at` (0: none)."""
        rows = self._db.tenant_rows(org_id, _POSITION_AT, (project_id, org_id, at))
        return int(rows[0][0]) if rows else 0
