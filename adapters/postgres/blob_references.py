"""Which blob keys an upload event names: asked of the event store itself (no projection lag),
within the project the key's path names (its index keeps each lookup to that project)."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import psycopg

from adapters.postgres.database import DatabaseUrl
from domain.artifact import Artifact

_TOPICS = [
    f"{Artifact.Uploaded.__module__}:{Artifact.Uploaded.__qualname__}",
    f"{Artifact.VersionUploaded.__module__}:{Artifact.VersionUploaded.__qualname__}",
]
# The blob's own uuid is what an event's JSON is searched for: ASCII, and unique to the blob
# (the safe name after it may be escaped differently in JSON).
_NAMED = (
    "SELECT 1 FROM teaim_events WHERE project_id = %s AND topic = ANY(%s)"
    " AND position(convert_to(%s, 'UTF8') IN state) > 0 LIMIT 1"
)


def _parts(key: str) -> tuple[UUID, str] | None:
    """(project id, blob uuid) of `org/<org>/project/<project>/<uuid>__<name>`."""
    parts = key.split("/")
    if len(parts) != 5 or parts[0] != "org" or parts[2] != "project":
        return None
    blob_id = parts[4].split("__", 1)[0]
    try:
        return UUID(parts[3]), str(UUID(blob_id))
    except ValueError:
        return None


def referenced_blob_keys(url: DatabaseUrl, keys: Sequence[str]) -> set[str]:
    """The keys among `keys` that an Uploaded or VersionUploaded event names."""
    named: set[str] = set()
    with psycopg.connect(url.libpq(), connect_timeout=10, autocommit=True) as conn:
        for key in keys:
            parts = _parts(key)
            if parts is None:
                continue  # no upload made this key (a temporary file, a stray): unnamed
            project_id, blob_id = parts
            if conn.execute(_NAMED, (project_id, _TOPICS, blob_id)).fetchone() is not None:
                named.add(key)
    return named
