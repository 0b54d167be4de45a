"""Project content commands: artifacts, RAID log items and memories."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from application.base import TeaimBase
from application.context import CommandContext
from application.results import CommandResult
from domain.artifact import Artifact
from domain.raid import Memory, RaidItem, RaidKind
from domain.roles import Permission


class ContentCommands(TeaimBase):
    """Documents, the RAID log and memories of a project."""

    # Artifacts -------------------------------------------------------------------------

    def register_artifact(
        self,
        *,
        ctx: CommandContext,
        project_id: UUID,
        name: str,
        mime: str,
        size: int,
        sha256: str,
        tags: list[str],
    ) -> CommandResult:
        """Register a document; its blob key is derived, never chosen by the client."""
        project, _ = self._guard_project(
            ctx, project_id, Permission.WRITE, action="artifact.register"
        )
        project.require_writable()
        artifact = Artifact.register(
            artifact_id=uuid4(),
            name=name,
            mime=mime,
            size=size,
            sha256=sha256,
            tags=tags,
            stamp=self._stamp(ctx, project_id),
        )
        return CommandResult(id=artifact.id, position=self._commit(artifact))

    def get_artifact(self, *, ctx: CommandContext, project_id: UUID, artifact_id: UUID) -> Artifact:
        """A document of a project the caller may read."""
        project, _ = self._guard_project(ctx, project_id, Permission.READ, action="artifact.read")
        return self._child(Artifact, artifact_id, project, "artifact")

    def update_artifact(
        self,
        *,
        ctx: CommandContext,
        project_id: UUID,
        artifact_id: UUID,
        name: str | None = None,
        tags: list[str] | None = None,
    ) -> CommandResult:
        """Rename and/or retag a document in one command."""
        project, _ = self._guard_project(
            ctx, project_id, Permission.WRITE, action="artifact.update"
        )
        project.require_writable()
        artifact = self._child(Artifact, artifact_id, project, "artifact")
        stamp = self._stamp(ctx, project_id)
        if name is not None:
            artifact.rename(name=name, stamp=stamp)
        if tags is not None:
            artifact.retag(tags=tags, stamp=stamp)
        return CommandResult(id=artifact.id, position=self._commit(artifact))

    def delete_artifact(
        self, *, ctx: CommandContext, project_id: UUID, artifact_id: UUID
    ) -> CommandResult:
        """Delete a document."""
        project, _ = self._guard_project(
            ctx, project_id, Permission.DELETE_ARTIFACT, action="artifact.delete"
        )
        project.require_writable()
        artifact = self._child(Artifact, artifact_id, project, "artifact")
        artifact.delete(stamp=self._stamp(ctx, project_id))
        return CommandResult(id=artifact.id, position=self._commit(artifact))

    # RAID log --------------------------------------------------------------------------

    def create_raid_item(
        self, *, ctx: CommandContext, project_id: UUID, kind: RaidKind, fields: dict[str, Any]
    ) -> CommandResult:
        """Log a risk, action, issue or decision."""
        project, _ = self._guard_project(ctx, project_id, Permission.WRITE, action="raid.create")
        project.require_writable()
        item = RaidItem.create(
            item_id=uuid4(), kind=kind, fields=fields, stamp=self._stamp(ctx, project_id)
        )
        return CommandResult(id=item.id, position=self._commit(item))

    def get_raid_item(self, *, ctx: CommandContext, project_id: UUID, item_id: UUID) -> RaidItem:
        """A RAID item of a project the caller may read."""
        project, _ = self._guard_project(ctx, project_id, Permission.READ, action="raid.read")
        return self._child(RaidItem, item_id, project, "raid_item")

    def update_raid_item(
        self, *, ctx: CommandContext, project_id: UUID, item_id: UUID, fields: dict[str, Any]
    ) -> CommandResult:
        """Change some fields of an open RAID item."""
        project, _ = self._guard_project(ctx, project_id, Permission.WRITE, action="raid.update")
        project.require_writable()
        item = self._child(RaidItem, item_id, project, "raid_item")
        item.update(fields=fields, stamp=self._stamp(ctx, project_id))
        return CommandResult(id=item.id, position=self._commit(item))

    def close_raid_item(
        self, *, ctx: CommandContext, project_id: UUID, item_id: UUID, resolution: str
    ) -> CommandResult:
        """Close a RAID item with its resolution."""
        project, _ = self._guard_project(ctx, project_id, Permission.WRITE, action="raid.close")
        project.require_writable()
        item = self._child(RaidItem, item_id, project, "raid_item")
        item.close(resolution=resolution, stamp=self._stamp(ctx, project_id))
        return CommandResult(id=item.id, position=self._commit(item))

    def reopen_raid_item(
        self, *, ctx: CommandContext, project_id: UUID, item_id: UUID
    ) -> CommandResult:
        """Open a closed RAID item again."""
        project, _ = self._guard_project(ctx, project_id, Permission.WRITE, action="raid.reopen")
        project.require_writable()
        item = self._child(RaidItem, item_id, project, "raid_item")
        item.reopen(stamp=self._stamp(ctx, project_id))
        return CommandResult(id=item.id, position=self._commit(item))

    # Memories --------------------------------------------------------------------------

    def create_memory(
        self, *, ctx: CommandContext, project_id: UUID, title: str, body: str, tags: list[str]
    ) -> CommandResult:
        """Record something the project should remember."""
        project, _ = self._guard_project(ctx, project_id, Permission.WRITE, action="memory.create")
        project.require_writable()
        memory = Memory.create(
            memory_id=uuid4(), title=title, body=body, tags=tags, stamp=self._stamp(ctx, project_id)
        )
        return CommandResult(id=memory.id, position=self._commit(memory))

    def get_memory(self, *, ctx: CommandContext, project_id: UUID, memory_id: UUID) -> Memory:
        """A memory of a project the caller may read."""
        project, _ = self._guard_project(ctx, project_id, Permission.READ, action="memory.read")
        return self._child(Memory, memory_id, project, "memory")

    def update_memory(
        self,
        *,
        ctx: CommandContext,
        project_id: UUID,
        memory_id: UUID,
        title: str | None = None,
        body: str | None = None,
        tags: list[str] | None = None,
    ) -> CommandResult:
        """Change a memory's text or tags."""
        project, _ = self._guard_project(ctx, project_id, Permission.WRITE, action="memory.update")
        project.require_writable()
        memory = self._child(Memory, memory_id, project, "memory")
        memory.update(title=title, body=body, tags=tags, stamp=self._stamp(ctx, project_id))
        return CommandResult(id=memory.id, position=self._commit(memory))

    def close_memory(
        self, *, ctx: CommandContext, project_id: UUID, memory_id: UUID
    ) -> CommandResult:
        """Retire a memory."""
        project, _ = self._guard_project(ctx, project_id, Permission.WRITE, action="memory.close")
        project.require_writable()
        memory = self._child(Memory, memory_id, project, "memory")
        memory.close(stamp=self._stamp(ctx, project_id))
        return CommandResult(id=memory.id, position=self._commit(memory))
