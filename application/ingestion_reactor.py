"""The ingestion reactor: puts a job on the ingestion queue for each document that needs one.

It reacts to the events that call for ingestion (a document or a new version arrived, a person
asked for a reingest) and to corrected text typed by a person (which needs only the index
step). Its effect is `IngestQueue.enqueue(IngestJob(job_id=effect_id))`, idempotent at the
queue (a job id already there is left as it is); its outcome is `Artifact.IngestionQueued`
carrying that job id, so a replay of the event sees it and does not enqueue again. The slow
work (download, extraction, OCR, embedding) happens in the queue's workers
(`application.ingestion`), fairly between orgs; this reactor stays one fast step per event.

A reaction is moot, and nothing is enqueued, when the document is gone, or when a later event
already supersedes it (a newer version or a newer reingest request: that event's own reaction
does the work). Corrected text records no outcome here: its outcome is the `Indexed` event
the worker records with the job id, and until then a replay enqueues the same job id again,
which the queue ignores (see docs/decisions/0025-ingestion-pipeline.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import ClassVar, Protocol
from uuid import UUID

from application.ingestion_ports import IngestJob, IngestQueue
from application.reactors import Reaction, effect_id_at, effect_id_for
from domain.artifact import Artifact
from domain.base import TeaimAggregate
from domain.stamps import Stamp

log = logging.getLogger("teaim.ingestion")

REACTOR_NAME = "ingestion"
# Events that call for extraction (a job that downloads and extracts the content).
EXTRACTION_TRIGGERS: tuple[type[TeaimAggregate.Event], ...] = (
    Artifact.Uploaded,
    Artifact.VersionUploaded,
    Artifact.ReingestRequested,
)
# Corrected text: a job that only chunks, embeds and marks the text indexed.
INDEX_TRIGGERS: tuple[type[TeaimAggregate.Event], ...] = (Artifact.OcrResolved,)
# What supersedes a pending extraction: a newer request for one.
_NEWER_EXTRACTION = (Artifact.VersionUploaded, Artifact.ReingestRequested, Artifact.OcrResolved)
# What supersedes corrected text waiting for its index step: anything that replaced the text.
_NEWER_TEXT = (
    Artifact.VersionUploaded,
    Artifact.ReingestRequested,
    Artifact.IngestionQueued,
    Artifact.TextExtracted,
    Artifact.OcrNeeded,
    Artifact.OcrResolved,
    Artifact.IngestionFailed,
)


class ArtifactHistory(Protocol):
    """What the reactor and the workers read and write (application.ingestion_commands)."""

    def artifact_of_org(self, org_id: UUID, artifact_id: UUID) -> Artifact | None: ...

    def artifact_event(self, artifact_id: UUID, version: int) -> TeaimAggregate.Event | None: ...

    def artifact_events_after(
        self, artifact_id: UUID, version: int
    ) -> Iterator[TeaimAggregate.Event]: ...


@dataclass(frozen=True, slots=True)
class Trigger:
    """The event a job was enqueued for, found again from the job id alone."""

    version: int
    event: TeaimAggregate.Event

    @property
    def index_only(self) -> bool:
        """Corrected text: the job chunks and embeds it; nothing is extracted."""
        return isinstance(self.event, INDEX_TRIGGERS)


def find_trigger(history: ArtifactHistory, artifact: Artifact, job_id: UUID) -> Trigger | None:
    """The artifact's event whose reaction has effect id `job_id` (None: no event of this
    artifact enqueued such a job). Effect ids are name hashes, so trying each version is a
    few microseconds apiece and reads only the one event found."""
    for version in range(artifact.version, 0, -1):
        if effect_id_at(REACTOR_NAME, artifact.id, version) == job_id:
            event = history.artifact_event(artifact.id, version)
            if isinstance(event, EXTRACTION_TRIGGERS + INDEX_TRIGGERS):
                return Trigger(version, event)
            return None
    return None


def superseded(trigger: Trigger, later: list[TeaimAggregate.Event]) -> bool:
    """Whether an event after the trigger makes its job moot (its own job does the work)."""
    newer = _NEWER_TEXT if trigger.index_only else _NEWER_EXTRACTION
    return any(isinstance(event, newer) for event in later)


class IngestionReactor:
    """Enqueues an ingestion job per triggering event and records `IngestionQueued`."""

    name: ClassVar[str] = REACTOR_NAME
    events: ClassVar[tuple[type[TeaimAggregate.Event], ...]] = EXTRACTION_TRIGGERS + INDEX_TRIGGERS

    def __init__(self, app: ReactorApp, queue: IngestQueue) -> None:
        self.app = app
        self.queue = queue

    def reaction(self, event: TeaimAggregate.Event) -> Reaction | None:
        if not isinstance(event, self.events):
            return None
        return Reaction(effect_id=effect_id_for(self.name, event), org_id=event.org_id, event=event)

    def outcome_recorded(self, reaction: Reaction) -> bool:
        """Recorded, or moot: the document is gone or a later event supersedes this one."""
        return self._pending(reaction) is None

    def perform(self, reaction: Reaction) -> IngestJob | None:
        job = self._pending(reaction)
        if job is not None:
            self.queue.enqueue(job)
            log.info(
                "ingestion job %s enqueued for org %s artifact %s version %s",
                job.job_id,
                job.org_id,
                job.artifact_id,
                job.content_version,
            )
        return job

    def record(self, reaction: Reaction, outcome: IngestJob | None) -> None:
        if outcome is None or isinstance(reaction.event, INDEX_TRIGGERS):
            return
        job = outcome

        def queued(artifact: Artifact, stamp: Stamp) -> None:
            # A newer version arrived since the enqueue: this job will be skipped as stale
            # and the new version's own reaction queues the next one.
            if artifact.deleted or artifact.content_version != job.content_version:
                return
            if artifact.job_id != job.job_id:
                artifact.ingestion_queued(job_id=job.job_id, stamp=stamp)

        self.app.change_artifact(
            org_id=job.org_id,
            artifact_id=job.artifact_id,
            cause=f"ingest:{job.job_id}",
            change=queued,
        )

    def _pending(self, reaction: Reaction) -> IngestJob | None:
        """The job this reaction still calls for (None: done already, or moot)."""
        event = reaction.event
        artifact = self.app.artifact_of_org(reaction.org_id, event.originator_id)
        if artifact is None or artifact.deleted:
            return None
        trigger = Trigger(event.originator_version, event)
        later = list(self.app.artifact_events_after(artifact.id, trigger.version))
        if trigger.index_only:
            done = any(
                isinstance(e, Artifact.Indexed) and e.job_id == reaction.effect_id for e in later
            )
        else:
            done = any(
                isinstance(e, Artifact.IngestionQueued) and e.job_id == reaction.effect_id
                for e in later
            )
        if done or superseded(trigger, later):
            return None
        return IngestJob(
            job_id=reaction.effect_id,
            org_id=artifact.org_id,
            project_id=artifact.project_id,
            artifact_id=artifact.id,
            content_version=artifact.content_version,
        )


class ReactorApp(ArtifactHistory, Protocol):
    """The history reads plus the one write the reactor makes."""

    def change_artifact(
        self,
        *,
        org_id: UUID,
        artifact_id: UUID,
        cause: str,
        change: Callable[[Artifact, Stamp], None],
    ) -> int: ...
