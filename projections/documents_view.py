"""The documents list's query interface: a project's live documents, searched and sorted."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol
from uuid import UUID

from projections.paging import Page, PageRequest

DocumentSort = Literal["newest", "oldest", "name"]


@dataclass(frozen=True, slots=True)
class DocumentListItem:
    """A live (not deleted) document of a project."""

    id: UUID
    project_id: UUID
    name: str
    mime: str
    size: int
    sha256: str
    tags: list[str]
    created_at: datetime
    updated_at: datetime
    content_version: int
    claimed_mime: str | None
    mime_mismatch: bool
    source: str
    source_url: str | None
    ingestion: str
    method: str | None
    page_count: int | None
    reason: str | None
    published: bool


class DocumentsView(Protocol):
    """Queries over the documents read model."""

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
        ...
