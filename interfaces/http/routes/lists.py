"""List routes: the caller's projects, and a project's members, stages, documents, RAID log
and memories, read from the project-lists read model in cursor-paginated pages."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from psycopg import Cursor
from psycopg.rows import DictRow

from adapters.postgres.queries import documents as document_queries
from adapters.postgres.queries import lists as list_queries
from adapters.postgres.queries import raid_items as raid_queries
from adapters.postgres.queries.lists import MAX_CURSOR_LENGTH, InvalidCursorError, Order, Page
from application.context import CommandContext
from domain.artifact import normalise_tags
from domain.project import Membership
from domain.raid import RaidKind, RaidStatus
from domain.roles import Permission, Role
from interfaces.http.consistency import MinPositionDep, await_read_models
from interfaces.http.deps import CtxDep, RuntimeDep
from interfaces.http.models_lists import (
    DocumentListItemOut,
    DocumentPageOut,
    MemberListItemOut,
    MemberPageOut,
    MemoryListItemOut,
    MemoryPageOut,
    ProjectListItemOut,
    ProjectPageOut,
    RaidListItemOut,
    RaidPageOut,
    StageListItemOut,
    StagePageOut,
    StageState,
)
from interfaces.http.problems import ProblemError
from interfaces.runtime import Runtime
from projections.lists import ProjectListsProjection

router = APIRouter(tags=["lists"])

READ_MODELS = (ProjectListsProjection.name,)


@dataclass(frozen=True, slots=True)
class PageParams:
    """Where a page starts and how long it is."""

    limit: int
    cursor: str | None


def _page_params(
    limit: Annotated[int, Query(ge=1, le=200, description="Items per page.")] = 50,
    cursor: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=MAX_CURSOR_LENGTH,
            description="`next_cursor` of the previous page (opaque).",
        ),
    ] = None,
) -> PageParams:
    return PageParams(limit=limit, cursor=cursor)


PageDep = Annotated[PageParams, Depends(_page_params)]
TagsQuery = Annotated[
    list[str] | None,
    Query(description="Only items carrying every one of these tags.", max_length=32),
]
Run = Callable[[Cursor[DictRow], tuple[Any, ...] | None], Page]


def _after(order: Order, cursor: str | None) -> tuple[Any, ...] | None:
    if cursor is None:
        return None
    try:
        return order.decode(cursor)
    except InvalidCursorError as error:
        raise ProblemError(422, "invalid-cursor", "Invalid cursor", str(error)) from error


def _read(
    runtime: Runtime,
    ctx: CommandContext,
    order: Order,
    page: PageParams,
    min_position: int | None,
    run: Run,
    *,
    project_id: UUID | None = None,
) -> Page:
    """Check membership (as the write side does), then the cursor, then read caught up."""
    if project_id is not None:
        # Records the denial and answers an outsider exactly as a missing project (404).
        runtime.app.get_project(ctx=ctx, project_id=project_id)
    after = _after(order, page.cursor)
    await_read_models(runtime, READ_MODELS, min_position)
    with runtime.read_db.tenant(ctx.principal.org_id) as cur:
        return run(cur, after)


def _tags(tags: list[str] | None) -> list[str]:
    # Stored tags are normalised by the domain; a filter must be spelled the same way.
    return normalise_tags(tags) if tags else []


@router.get("/api/projects")
def list_my_projects(
    runtime: RuntimeDep,
    ctx: CtxDep,
    page: PageDep,
    min_position: MinPositionDep,
    archived: Annotated[bool | None, Query(description="Only (un)archived projects.")] = None,
    sort: Literal["name", "newest", "oldest"] = "name",
) -> ProjectPageOut:
    """Projects of the caller's org the caller is a member of, with the caller's role."""
    order = list_queries.PROJECT_ORDERS[sort]
    # The internal service acts for its whole tenant: it sees every project of the org.
    member = None if ctx.principal.is_service else ctx.principal.user_id
    result = _read(
        runtime,
        ctx,
        order,
        page,
        min_position,
        lambda cur, after: list_queries.list_projects(
            cur,
            ctx.principal.org_id,
            member=member,
            archived=archived,
            order=order,
            after=after,
            limit=page.limit,
        ),
    )
    return ProjectPageOut(
        items=[ProjectListItemOut.model_validate(row) for row in result.items],
        next_cursor=result.next_cursor,
    )


def member_page(
    runtime: Runtime,
    ctx: CommandContext,
    project_id: UUID,
    page: PageParams,
    min_position: int | None,
) -> MemberPageOut:
    """A page of a project's members (served at `/api/projects/{project_id}/members`)."""
    order = list_queries.MEMBER_ORDER
    result = _read(
        runtime,
        ctx,
        order,
        page,
        min_position,
        lambda cur, after: list_queries.list_members(
            cur, ctx.principal.org_id, project_id, after=after, limit=page.limit
        ),
        project_id=project_id,
    )
    return MemberPageOut(
        items=[_member(row) for row in result.items], next_cursor=result.next_cursor
    )


def _member(row: dict[str, Any]) -> MemberListItemOut:
    membership = Membership(role=Role(row["role"]), signer=bool(row["signer"]))
    return MemberListItemOut(
        user_id=row["user_id"],
        role=membership.role,
        signer=membership.signer,
        permissions=[p for p in Permission if membership.allows(p)],
        added_at=row["added_at"],
        updated_at=row["updated_at"],
    )


@router.get("/api/projects/{project_id}/stages")
def list_stages(
    project_id: UUID,
    runtime: RuntimeDep,
    ctx: CtxDep,
    page: PageDep,
    min_position: MinPositionDep,
    state: StageState | None = None,
) -> StagePageOut:
    """The project's stages by order, each with its current sign-off round's progress."""
    order = list_queries.STAGE_ORDER
    result = _read(
        runtime,
        ctx,
        order,
        page,
        min_position,
        lambda cur, after: list_queries.list_stages(
            cur, ctx.principal.org_id, project_id, state=state, after=after, limit=page.limit
        ),
        project_id=project_id,
    )
    return StagePageOut(
        items=[StageListItemOut.model_validate(row) for row in result.items],
        next_cursor=result.next_cursor,
    )


@router.get("/api/projects/{project_id}/documents")
def list_documents(
    project_id: UUID,
    runtime: RuntimeDep,
    ctx: CtxDep,
    page: PageDep,
    min_position: MinPositionDep,
    q: Annotated[
        str | None, Query(max_length=200, description="Name contains (case-insensitive).")
    ] = None,
    tag: TagsQuery = None,
    sort: Literal["newest", "oldest", "name"] = "newest",
) -> DocumentPageOut:
    """The project's documents (deleted ones excluded): name search, tag filter, sort."""
    order = document_queries.DOCUMENT_ORDERS[sort]
    # PostgreSQL cannot take a NUL as a parameter (and no stored name holds one: the domain
    # refuses control characters): search for its usual stand-in, U+FFFD, instead.
    search = (q or "").replace("\x00", "\ufffd").strip() or None
    tags = _tags(tag)
    result = _read(
        runtime,
        ctx,
        order,
        page,
        min_position,
        lambda cur, after: document_queries.list_documents(
            cur,
            ctx.principal.org_id,
            project_id,
            search=search,
            tags=tags,
            order=order,
            after=after,
            limit=page.limit,
        ),
        project_id=project_id,
    )
    return DocumentPageOut(
        items=[DocumentListItemOut.model_validate(row) for row in result.items],
        next_cursor=result.next_cursor,
    )


@router.get("/api/projects/{project_id}/raid")
def list_raid_items(
    project_id: UUID,
    runtime: RuntimeDep,
    ctx: CtxDep,
    page: PageDep,
    min_position: MinPositionDep,
    kind: RaidKind | None = None,
    status: RaidStatus | None = None,
    sort: Literal["updated", "due"] = "updated",
) -> RaidPageOut:
    """The project's RAID log, by last change or by due date (undated last)."""
    order = raid_queries.RAID_ORDERS[sort]
    result = _read(
        runtime,
        ctx,
        order,
        page,
        min_position,
        lambda cur, after: raid_queries.list_raid_items(
            cur,
            ctx.principal.org_id,
            project_id,
            kind=None if kind is None else kind.value,
            status=None if status is None else status.value,
            order=order,
            after=after,
            limit=page.limit,
        ),
        project_id=project_id,
    )
    return RaidPageOut(
        items=[RaidListItemOut.model_validate(row) for row in result.items],
        next_cursor=result.next_cursor,
    )


@router.get("/api/projects/{project_id}/memories")
def list_memories(
    project_id: UUID,
    runtime: RuntimeDep,
    ctx: CtxDep,
    page: PageDep,
    min_position: MinPositionDep,
    closed: Annotated[bool | None, Query(description="Only closed (or open) memories.")] = None,
    tag: TagsQuery = None,
    sort: Literal["newest", "oldest"] = "newest",
) -> MemoryPageOut:
    """The project's memories, newest first by default."""
    order = raid_queries.MEMORY_ORDERS[sort]
    tags = _tags(tag)
    result = _read(
        runtime,
        ctx,
        order,
        page,
        min_position,
        lambda cur, after: raid_queries.list_memories(
            cur,
            ctx.principal.org_id,
            project_id,
            closed=closed,
            tags=tags,
            order=order,
            after=after,
            limit=page.limit,
        ),
        project_id=project_id,
    )
    return MemoryPageOut(
        items=[MemoryListItemOut.model_validate(row) for row in result.items],
        next_cursor=result.next_cursor,
    )
