"""Project and membership routes."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Response

from interfaces.http.deps import AppDep, CtxDep, PageDep, ReaderDep
from interfaces.http.models import (
    CommandOut,
    MemberIn,
    MemberPatch,
    ProjectIn,
    ProjectOut,
    ProjectPatch,
)
from interfaces.http.models.lists import MemberPageOut
from interfaces.http.problems import error_responses
from interfaces.http.routes import lists
from interfaces.http.views import command_out, project_out

router = APIRouter(
    prefix="/api/projects",
    tags=["projects"],
    # 404 also answers a project the caller is not a member of (recorded).
    responses=error_responses(401, 403, 404, 409, 422),
)

UserPath = Annotated[str, Path(min_length=1, max_length=200)]


@router.post("", status_code=201)
def create_project(body: ProjectIn, app: AppDep, ctx: CtxDep, response: Response) -> CommandOut:
    """Create a project; the caller becomes its owner."""
    result = app.create_project(ctx=ctx, code=body.code, name=body.name)
    response.headers["Location"] = f"/api/projects/{result.id}"
    return command_out(result)


@router.get("/{project_id}")
def get_project(project_id: UUID, app: AppDep, ctx: CtxDep) -> ProjectOut:
    """A project the caller is a member of."""
    return project_out(app.get_project(ctx=ctx, project_id=project_id))


@router.patch("/{project_id}")
def rename_project(project_id: UUID, body: ProjectPatch, app: AppDep, ctx: CtxDep) -> CommandOut:
    """Rename a project."""
    return command_out(app.rename_project(ctx=ctx, project_id=project_id, name=body.name))


@router.post("/{project_id}/archive")
def archive_project(project_id: UUID, app: AppDep, ctx: CtxDep) -> CommandOut:
    """Archive a project (it then refuses writes)."""
    return command_out(app.archive_project(ctx=ctx, project_id=project_id))


@router.post("/{project_id}/unarchive")
def unarchive_project(project_id: UUID, app: AppDep, ctx: CtxDep) -> CommandOut:
    """Unarchive a project."""
    return command_out(app.unarchive_project(ctx=ctx, project_id=project_id))


# 503: `min_position` not reached in time (or too many waits).
@router.get("/{project_id}/members", responses=error_responses(503))
def list_members(
    project_id: UUID,
    reader: ReaderDep,
    page: PageDep,
    _position: lists.ListsAt,
) -> MemberPageOut:
    """The project's members by user id, and what each may do (paginated)."""
    return lists.member_page(reader, project_id, page)


@router.post("/{project_id}/members", status_code=201)
def add_member(project_id: UUID, body: MemberIn, app: AppDep, ctx: CtxDep) -> CommandOut:
    """Add a member (no higher than a role the caller may grant)."""
    return command_out(
        app.add_member(
            ctx=ctx,
            project_id=project_id,
            user_id=body.user_id,
            role=body.role,
            signer=body.signer,
        )
    )


@router.patch("/{project_id}/members/{user_id}")
def update_member(
    project_id: UUID, user_id: UserPath, body: MemberPatch, app: AppDep, ctx: CtxDep
) -> CommandOut:
    """Change a member's role and/or signer toggle."""
    return command_out(
        app.update_member(
            ctx=ctx, project_id=project_id, user_id=user_id, role=body.role, signer=body.signer
        )
    )


@router.delete("/{project_id}/members/{user_id}")
def remove_member(project_id: UUID, user_id: UserPath, app: AppDep, ctx: CtxDep) -> CommandOut:
    """Remove a member (never the last owner)."""
    return command_out(app.remove_member(ctx=ctx, project_id=project_id, user_id=user_id))
