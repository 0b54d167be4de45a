"""Marketplace commands: list a project's document in the public index, or take it out.

Publishing makes a document's text findable by every org (`GET /api/marketplace/search`), so
it is an act of the project's owners and admins (`Permission.PUBLISH`), recorded as an event
on the artifact (`artifact.published` / `artifact.unpublished` in the audit feed); a refusal
is a recorded denial like every other.
"""

from __future__ import annotations

from uuid import UUID

from application.base import TeaimBase
from application.context import CommandContext
from application.results import CommandResult
from domain.artifact import Artifact
from domain.roles import Permission


class MarketplaceCommands(TeaimBase):
    """Publishing and unpublishing documents."""

    def publish_artifact(
        self, *, ctx: CommandContext, project_id: UUID, artifact_id: UUID
    ) -> CommandResult:
        """List the document in the public marketplace (a no-op if it already is)."""
        project, _ = self._guard_project(
            ctx, project_id, Permission.PUBLISH, action="artifact.publish"
        )
        # An archived project is frozen: nothing of it starts being shared either.
        project.require_writable()
        artifact = self._child(Artifact, artifact_id, project, "artifact")
        artifact.publish(stamp=self._stamp(ctx, project_id))
        return CommandResult(id=artifact.id, position=self._commit(artifact))

    def unpublish_artifact(
        self, *, ctx: CommandContext, project_id: UUID, artifact_id: UUID
    ) -> CommandResult:
        """Take the document out of the marketplace (a no-op if it is not listed).

        Allowed in an archived project too: withdrawing must never be blocked.
        """
        project, _ = self._guard_project(
            ctx, project_id, Permission.PUBLISH, action="artifact.unpublish"
        )
        artifact = self._child(Artifact, artifact_id, project, "artifact")
        artifact.unpublish(stamp=self._stamp(ctx, project_id))
        return CommandResult(id=artifact.id, position=self._commit(artifact))
