"""List routes: the caller's projects, and a project's members, stages, documents, RAID log
and memories, read from the project-lists read model in cursor-paginated pages.

Each route parses, authorises through its `Reader` (members only: an outsider gets the 404 of
a missing project, recorded), waits for read-your-writes if asked, calls one query and maps
its records. The membership check comes before the cursor is looked at.
"""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query

from domain.artifact import normalise_tags
from domain.raid import RaidKind, RaidStatus
from interfaces.http.access import Reader
from interfaces.http.consistency import caught_up
from interfaces.http.deps import PageDep, ReaderDep
from interfaces.http.models.lists import (
    DocumentPageOut,
    MemberPageOut,
    MemoryPageOut,
    ProjectPageOut,
    RaidPageOut,
    StagePageOut,
    StageState,
    document_page_out,
    member_page_out,
    memory_page_out,
    project_page_out,
    raid_page_out,
    stage_page_out,
)
from interfaces.http.problems import error_responses
from projections.lists import ProjectListsProjection
from projections.paging import PageRequest

READ_MODELS = (ProjectListsProjection.name,)
# The request's `min_position`, once the lists applied it (an async wait; else 503).
ListsAt = Annotated[int | None, Depends(caught_up(READ_MODELS))]
# A list of the caller's org; and a list inside one project (members only).
ORG_LIST_ERRORS = error_responses(401, 422, 503)
PROJECT_LIST_ERRORS = error_responses(401, 404, 422, 503)

router = APIRouter(tags=["lists"])

TagsQuery = Annotated[
    list[str] | None,
    Query(description="Only items carrying every one of these tags.", max_length=32),
]


def _tags(tags: list[str] | None) -> list[str]:
    # Stored tags are normalised by the domain; a filter must be spelled the same way.
    return normalise_tags(tags) if tags else []


def _project_read(reader: Reader, project_id: UUID) -> None:
    reader.project(project_id)


@router.get("/api/projects", responses=ORG_LIST_ERRORS)
def list_my_projects(
    reader: ReaderDep,
    page: PageDep,
    _position: ListsAt,
    archived: Annotated[bool | None, Query(description="Only (un)archived projects.")] = None,
    sort: Literal["name", "newest", "oldest"] = "name",
) -> ProjectPageOut:
    """Projects of the caller's org the caller is a member of, with the caller's role."""
    # The internal service acts for its whole tenant: it sees every project of the org.
    member = None if reader.principal.is_service else reader.user_id
    return project_page_out(
        reader.views.lists.projects(
            reader.org_id, member=member, archived=archived, sort=sort, page=page
        )
    )


def member_page(reader: Reader, project_id: UUID, page: PageRequest) -> MemberPageOut:
    """A page of a project's members (served at `/api/projects/{project_id}/members`)."""
    _project_read(reader, project_id)
    return member_page_out(
        reader.views.lists.members(reader.org_id, project_id, page=page),
        reader.app.auditors_of(reader.org_id),
    )


@router.get("/api/projects/{project_id}/stages", responses=PROJECT_LIST_ERRORS)
def list_stages(
    project_id: UUID,
    reader: ReaderDep,
    page: PageDep,
    _position: ListsAt,
    state: StageState | None = None,
) -> StagePageOut:
    """The project's stages by order, each with its current sign-off round's progress."""
    _project_read(reader, project_id)
    return stage_page_out(
        reader.views.lists.stages(reader.org_id, project_id, state=state, page=page)
    )


@router.get("/api/projects/{project_id}/documents", responses=PROJECT_LIST_ERRORS)
def list_documents(
    project_id: UUID,
    reader: ReaderDep,
    page: PageDep,
    _position: ListsAt,
    q: Annotated[
        str | None, Query(max_length=200, description="Name contains (case-insensitive).")
    ] = None,
    tag: TagsQuery = None,
    sort: Literal["newest", "oldest", "name"] = "newest",
) -> DocumentPageOut:
    """The project's documents (deleted ones excluded): name search, tag filter, sort."""
    # PostgreSQL cannot take a NUL as a parameter (and no stored name holds one: the domain
    # refuses control characters): search for its usual stand-in, U+FFFD, instead.
    search = (q or "").replace("\x00", "\ufffd").strip() or None
    tags = _tags(tag)
    _project_read(reader, project_id)
    found = reader.views.documents.documents(
        reader.org_id, project_id, search=search, tags=tags, sort=sort, page=page
    )
    return document_page_out(found)


@router.get("/api/projects/{project_id}/raid", responses=PROJECT_LIST_ERRORS)
def list_raid_items(
    project_id: UUID,
    reader: ReaderDep,
    page: PageDep,
    _position: ListsAt,
    kind: RaidKind | None = None,
    status: RaidStatus | None = None,
    sort: Literal["updated", "due"] = "updated",
) -> RaidPageOut:
    """The project's RAID log, by last change or by due date (undated last)."""
    _project_read(reader, project_id)
    found = reader.views.raid.raid_items(
        reader.org_id, project_id, kind=kind, status=status, sort=sort, page=page
    )
    return raid_page_out(found)


@router.get("/api/projects/{project_id}/memories", responses=PROJECT_LIST_ERRORS)
def list_memories(
    project_id: UUID,
    reader: ReaderDep,
    page: PageDep,
    _position: ListsAt,
    closed: Annotated[bool | None, Query(description="Only closed (or open) memories.")] = None,
    tag: TagsQuery = None,
    sort: Literal["newest", "oldest"] = "newest",
) -> MemoryPageOut:
    """The project's memories, newest first by default."""
    tags = _tags(tag)
    _project_read(reader, project_id)
    found = reader.views.raid.memories(
        reader.org_id, project_id, closed=closed, tags=tags, sort=sort, page=page
    )
    return memory_page_out(found)
