"""Ingestion commands: what people ask (reingest, corrected text) and what workers record.

People act through the usual guards (write permission on a writable project). Workers and the
ingestion reactor act as the service for the artifact's own org: they are handed an org and an
artifact id by a job or an event, and never touch an artifact of another org (a mismatch is
"not found"). Each outcome is one save on the artifact, retried a few times when a person's
edit (a rename) raced it: the outcome is still true after the edit, so it is recorded again
on the fresh artifact rather than the job failing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from application.base import TeaimBase
from application.context import CommandContext
from application.results import CommandResult
from domain.artifact import Artifact, IngestionState
from domain.base import TeaimAggregate
from domain.errors import NotFoundError
from domain.roles import Permission
from domain.stamps import Stamp

# Who records what the pipeline found (a reserved prefix: no user can take this id).
INGESTION_ACTOR = "service:ingestion"
# States a review-queue item is in: what `resolve` acts on.
REVIEW_STATES = frozenset({IngestionState.NEEDS_OCR.value, IngestionState.FAILED.value})
# Saves retried when a concurrent edit of the artifact won the race.
_SAVE_ATTEMPTS = 3
# Events read per round trip when walking an artifact's later history.
_EVENT_PAGE = 50

ArtifactChange = Callable[[Artifact, Stamp], None]


class IngestionCommands(TeaimBase):
    """Reingest and review-queue commands, and the system's reads and writes for ingestion."""

    # People ------------------------------------------------------------------------------

    def reingest_artifact(
        self, *, ctx: CommandContext, project_id: UUID, artifact_id: UUID
    ) -> CommandResult:
        """Run ingestion again on the document's current version (the workers do the work)."""
        project, _ = self._guard_project(
            ctx, project_id, Permission.WRITE, action="artifact.reingest"
        )
        project.require_writable()
        artifact = self._child(Artifact, artifact_id, project, "artifact")
        artifact.request_reingest(stamp=self._stamp(ctx, project_id))
        return CommandResult(id=artifact.id, position=self._commit(artifact))

    def resolve_review_item(
        self,
        *,
        ctx: CommandContext,
        project_id: UUID,
        artifact_id: UUID,
        pages: list[str] | None,
    ) -> CommandResult:
        """Resolve a review-queue item: with corrected text (`pages`), or by retrying (None).

        The item is the document while it needs OCR or failed; any other document has no
        item (404), whatever the read model still shows.
        """
        project, _ = self._guard_project(ctx, project_id, Permission.WRITE, action="review.resolve")
        project.require_writable()
        artifact = self._child(Artifact, artifact_id, project, "artifact")
        if artifact.deleted or artifact.ingestion not in REVIEW_STATES:
            raise NotFoundError("review item not found", item_id=artifact_id)
        stamp = self._stamp(ctx, project_id)
        if pages is None:
            artifact.request_reingest(stamp=stamp)
        else:
            artifact.resolve_ocr(pages=pages, stamp=stamp)
        return CommandResult(id=artifact.id, position=self._commit(artifact))

    # The system (workers, the ingestion reactor, the CLI) --------------------------------

    def artifact_of_org(self, org_id: UUID, artifact_id: UUID) -> Artifact | None:
        """The artifact, if it exists and belongs to `org_id` (read-only: never mutate it)."""
        artifact = self._find(Artifact, artifact_id, for_update=False)
        if artifact is None or artifact.org_id != org_id:
            return None
        return artifact

    def artifact_event(self, artifact_id: UUID, version: int) -> TeaimAggregate.Event | None:
        """The artifact's event at `version` (None when there is none)."""
        stored = self.recorder.select_events(artifact_id, gt=version - 1, lte=version)
        if not stored:
            return None
        event = self.mapper.to_domain_event(stored[0])
        return event if isinstance(event, TeaimAggregate.Event) else None

    def artifact_events_after(
        self, artifact_id: UUID, version: int
    ) -> Iterator[TeaimAggregate.Event]:
        """The artifact's events after `version`, oldest first (read a page at a time)."""
        after = version
        while True:
            stored = self.recorder.select_events(artifact_id, gt=after, limit=_EVENT_PAGE)
            for item in stored:
                event = self.mapper.to_domain_event(item)
                if isinstance(event, TeaimAggregate.Event):
                    yield event
            if len(stored) < _EVENT_PAGE:
                return
            after = stored[-1].originator_version

    def change_artifact(
        self, *, org_id: UUID, artifact_id: UUID, cause: str, change: ArtifactChange
    ) -> int:
        """Apply `change` to the org's artifact as the ingestion service and save it.

        `change` decides on the fresh artifact (it may do nothing); a save that lost a race
        with another writer is tried again on a fresher one. The position written (0: none).
        """
        for attempt in range(1, _SAVE_ATTEMPTS + 1):
            artifact = self._find(Artifact, artifact_id)
            if artifact is None or artifact.org_id != org_id:
                raise NotFoundError("artifact not found", artifact_id=artifact_id)
            stamp = Stamp(
                org_id=org_id,
                actor=INGESTION_ACTOR,
                correlation_id=cause,
                at=self.clock.now(),
                project_id=artifact.project_id,
            )
            change(artifact, stamp)
            try:
                return self._commit(artifact)
            except IntegrityError:
                if attempt == _SAVE_ATTEMPTS:
                    raise
        return 0  # pragma: no cover (the loop returns or raises)

    def request_reingest_as_service(
        self, *, ctx: CommandContext, project_id: UUID, artifact_id: UUID, states: frozenset[str]
    ) -> CommandResult | None:
        """Reingest for an operator (the CLI), only if the document is in one of `states`
        (empty: any state with content); None when it is not, or has no content, or is gone."""
        project, _ = self._guard_project(
            ctx, project_id, Permission.WRITE, action="artifact.reingest"
        )
        if project.archived:
            return None
        artifact = self._find(Artifact, artifact_id)
        if artifact is None or artifact.project_id != project.id or artifact.deleted:
            return None
        if artifact.ingestion == IngestionState.NO_CONTENT.value:
            return None
        if states and artifact.ingestion not in states:
            return None
        artifact.request_reingest(stamp=self._stamp(ctx, project_id))
        return CommandResult(id=artifact.id, position=self._commit(artifact))
