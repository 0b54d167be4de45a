"""Artifact, RAID log and memory routes (uploads and downloads: routes/artifacts.py)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter

from interfaces.http.deps import AppDep, CtxDep
from interfaces.http.models import (
    ArtifactOut,
    ArtifactPatch,
    CommandOut,
    MemoryIn,
    MemoryOut,
    MemoryPatch,
    RaidCloseIn,
    RaidFields,
    RaidIn,
    RaidOut,
)
from interfaces.http.problems import error_responses
from interfaces.http.views import artifact_out, command_out, memory_out, raid_out

router = APIRouter(
    prefix="/api/projects/{project_id}",
    tags=["content"],
    responses=error_responses(401, 403, 404, 409, 422),
)


@router.get("/artifacts/{artifact_id}")
def get_artifact(project_id: UUID, artifact_id: UUID, app: AppDep, ctx: CtxDep) -> ArtifactOut:
    """A document: names, tags, content version, claimed vs sniffed type, ingestion state."""
    return artifact_out(app.get_artifact(ctx=ctx, project_id=project_id, artifact_id=artifact_id))


@router.patch("/artifacts/{artifact_id}")
def update_artifact(
    project_id: UUID, artifact_id: UUID, body: ArtifactPatch, app: AppDep, ctx: CtxDep
) -> CommandOut:
    """Rename and/or retag a document."""
    return command_out(
        app.update_artifact(
            ctx=ctx,
            project_id=project_id,
            artifact_id=artifact_id,
            name=body.name,
            tags=None if body.tags is None else list(body.tags),
        )
    )


@router.delete("/artifacts/{artifact_id}")
def delete_artifact(project_id: UUID, artifact_id: UUID, app: AppDep, ctx: CtxDep) -> CommandOut:
    """Delete a document."""
    return command_out(app.delete_artifact(ctx=ctx, project_id=project_id, artifact_id=artifact_id))


@router.post("/raid", status_code=201)
def create_raid_item(project_id: UUID, body: RaidIn, app: AppDep, ctx: CtxDep) -> CommandOut:
    """Log a risk, action, issue or decision."""
    fields = body.changes()
    fields.pop("kind", None)
    return command_out(
        app.create_raid_item(ctx=ctx, project_id=project_id, kind=body.kind, fields=fields)
    )


@router.get("/raid/{item_id}")
def get_raid_item(project_id: UUID, item_id: UUID, app: AppDep, ctx: CtxDep) -> RaidOut:
    """A RAID log item."""
    return raid_out(app.get_raid_item(ctx=ctx, project_id=project_id, item_id=item_id))


@router.patch("/raid/{item_id}")
def update_raid_item(
    project_id: UUID, item_id: UUID, body: RaidFields, app: AppDep, ctx: CtxDep
) -> CommandOut:
    """Change fields of an open RAID item (send null to clear owner, severity, due date)."""
    return command_out(
        app.update_raid_item(ctx=ctx, project_id=project_id, item_id=item_id, fields=body.changes())
    )


@router.post("/raid/{item_id}/close")
def close_raid_item(
    project_id: UUID, item_id: UUID, body: RaidCloseIn, app: AppDep, ctx: CtxDep
) -> CommandOut:
    """Close a RAID item with its resolution."""
    return command_out(
        app.close_raid_item(
            ctx=ctx, project_id=project_id, item_id=item_id, resolution=body.resolution
        )
    )


@router.post("/raid/{item_id}/reopen")
def reopen_raid_item(project_id: UUID, item_id: UUID, app: AppDep, ctx: CtxDep) -> CommandOut:
    """Reopen a closed RAID item."""
    return command_out(app.reopen_raid_item(ctx=ctx, project_id=project_id, item_id=item_id))


@router.post("/memories", status_code=201)
def create_memory(project_id: UUID, body: MemoryIn, app: AppDep, ctx: CtxDep) -> CommandOut:
    """Record something the project should remember."""
    return command_out(
        app.create_memory(
            ctx=ctx,
            project_id=project_id,
            title=body.title,
            body=body.body,
            tags=list(body.tags),
        )
    )


@router.get("/memories/{memory_id}")
def get_memory(project_id: UUID, memory_id: UUID, app: AppDep, ctx: CtxDep) -> MemoryOut:
    """A project memory."""
    return memory_out(app.get_memory(ctx=ctx, project_id=project_id, memory_id=memory_id))


@router.patch("/memories/{memory_id}")
def update_memory(
    project_id: UUID, memory_id: UUID, body: MemoryPatch, app: AppDep, ctx: CtxDep
) -> CommandOut:
    """Change a memory's text or tags."""
    return command_out(
        app.update_memory(
            ctx=ctx,
            project_id=project_id,
            memory_id=memory_id,
            title=body.title,
            body=body.body,
            tags=None if body.tags is None else list(body.tags),
        )
    )


@router.post("/memories/{memory_id}/close")
def close_memory(project_id: UUID, memory_id: UUID, app: AppDep, ctx: CtxDep) -> CommandOut:
    """Retire a memory."""
    return command_out(app.close_memory(ctx=ctx, project_id=project_id, memory_id=memory_id))
