"""Documents list: a project's live documents, searched by name, filtered by tags, sorted.

Name search is a case-insensitive substring match. pg_trgm is not shipped with the embedded
server, so no index serves a substring: the match is a filter over the rows of one project,
reached (and stopped early, page by page) through the index of the requested sort. The name
index (lower(name), bytewise) serves the name sort and would serve a prefix match.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from adapters.postgres.queries.lists import Key, ListQuery, Order, fetch_page
from adapters.postgres.read_db import ReadDatabase
from projections.documents_view import DocumentListItem, DocumentSort
from projections.paging import Page, PageRequest

_CREATED = (Key("d.created_at", "ts"), Key("d.id", "uuid"))
DOCUMENT_ORDERS: dict[str, Order] = {
    "newest": Order("newest", _CREATED, descending=True),
    "oldest": Order("oldest", _CREATED),
    "name": Order("name", (Key('lower(d.name) COLLATE "C"', "text"), Key("d.id", "uuid"))),
}


def _document(row: dict[str, Any]) -> DocumentListItem:
    return DocumentListItem(**row)


class PostgresDocuments:
    """`DocumentsView` over the `documents` table, read as the RLS-bound role."""

    def __init__(self, read_db: ReadDatabase) -> None:
        self._db = read_db

    def documents(
        self,
        org_id: UUID,
        project_id: UUID,
        *,
        search: str | None,
        tags: Sequence[str],
        sort: DocumentSort,
        page: PageRequest,
    ) -> Page[DocumentListItem]:
        """Live documents whose name contains `search` and that carry every tag in `tags`."""
        conditions = ["d.org_id = %s", "d.project_id = %s", "NOT d.deleted"]
        params: list[Any] = [org_id, project_id]
        if search:
            # strpos, not LIKE: the search text needs no escaping of wildcards.
            conditions.append("strpos(lower(d.name), lower(%s)) > 0")
            params.append(search)
        if tags:
            conditions.append("d.tags @> %s")
            params.append(Jsonb(list(tags)))
        query = ListQuery(
            "d.id, d.project_id, d.name, d.mime, d.size, d.sha256, d.tags, d.created_at,"
            " d.updated_at, d.content_version, d.claimed_mime, d.mime_mismatch, d.source,"
            " d.source_url, d.ingestion, d.method, d.page_count, d.reason, d.published",
            "documents AS d",
            tuple(conditions),
            tuple(params),
        )
        return fetch_page(self._db, org_id, query, DOCUMENT_ORDERS[sort], page, _document)
