"""Document uploads: record a stored blob as a new artifact, or as a new version of one.

The HTTP layer streams the bytes into the blob store first (it alone holds the stream); these
commands then record what was stored. The order is what keeps a refused upload from leaving
anything behind: permission is checked before a byte is read (`check_upload`), the blob is
written, and only then the event; when recording fails the caller deletes the blob.

Duplicates are found without a read model: a project's first upload of some bytes gets the
id `content_artifact_id(org, project, sha256)`, so the same bytes again load that artifact
from the event store (no projection lag, and two racing uploads of the same bytes collide on
its first event instead of making two documents). See docs/decisions/0023-uploads.md.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from application.base import TeaimBase
from application.context import CommandContext
from domain.artifact import Artifact, Content
from domain.roles import Permission

# Fixed namespace of content-derived artifact ids (never change it: ids already made use it).
_CONTENT_NAMESPACE = UUID("6f3b1d52-2c7e-4a8e-9a51-3f0c2d7b9e11")


class OnDuplicate(StrEnum):
    """What an upload of bytes the project already has does."""

    EXISTING = "existing"  # answer the existing document, record nothing
    NEW_VERSION = "new_version"  # record the bytes again as the document's next version


@dataclass(frozen=True, slots=True)
class UploadOutcome:
    """The artifact an upload landed on and what happened.

    `duplicate`: the project already had these bytes. `stored`: the new blob is now named by
    an event (False: the caller must delete it, nothing points at it).
    """

    id: UUID
    position: int
    content_version: int
    duplicate: bool
    stored: bool
    name: str  # the document's name as stored (sanitised), not as the client sent it


def content_artifact_id(org_id: UUID, project_id: UUID, sha256: str) -> UUID:
    """The id a project's first document with these bytes gets."""
    return uuid.uuid5(_CONTENT_NAMESPACE, f"{org_id}/{project_id}/{sha256.lower()}")


class DocumentCommands(TeaimBase):
    """Uploaded documents: the first version, and new versions of the same bytes."""

    def check_upload(self, *, ctx: CommandContext, project_id: UUID) -> None:
        """Refuse (and record the refusal) before any byte of an upload is read."""
        project, _ = self._guard_project(
            ctx, project_id, Permission.WRITE, action="artifact.upload"
        )
        project.require_writable()

    def record_upload(
        self,
        *,
        ctx: CommandContext,
        project_id: UUID,
        name: str,
        tags: list[str],
        content: Content,
        on_duplicate: OnDuplicate = OnDuplicate.EXISTING,
    ) -> UploadOutcome:
        """Record stored bytes as a new document, or answer the document that has them."""
        project, _ = self._guard_project(
            ctx, project_id, Permission.WRITE, action="artifact.upload"
        )
        project.require_writable()
        stamp = self._stamp(ctx, project_id)
        derived = content_artifact_id(ctx.principal.org_id, project_id, content.sha256)
        existing = self._find(Artifact, derived)
        if existing is not None and existing.project_id == project_id and not existing.deleted:
            if on_duplicate is OnDuplicate.EXISTING:
                return UploadOutcome(
                    id=existing.id,
                    position=0,
                    content_version=existing.content_version,
                    duplicate=True,
                    stored=False,
                    name=existing.name,
                )
            existing.upload_version(content=content, stamp=stamp)
            return UploadOutcome(
                id=existing.id,
                position=self._commit(existing),
                content_version=existing.content_version,
                duplicate=True,
                stored=True,
                name=existing.name,
            )
        # A deleted document's bytes uploaded again make a new document (a fresh id: the
        # derived one is taken by the deleted artifact's history).
        artifact_id = derived if existing is None else uuid.uuid4()
        artifact = Artifact.upload(
            artifact_id=artifact_id, name=name, content=content, tags=tags, stamp=stamp
        )
        return UploadOutcome(
            id=artifact.id,
            position=self._commit(artifact),
            content_version=artifact.content_version,
            duplicate=False,
            stored=True,
            name=artifact.name,
        )
