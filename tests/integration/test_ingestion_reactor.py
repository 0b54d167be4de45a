"""The ingestion reactor on the real store: one job per document, once, through replays,
crashes and another org's poison; then the workers' use case takes the jobs to `Indexed`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import psycopg
import pytest

from adapters.blobs.local import LocalBlobStore
from adapters.postgres.database import DatabaseUrl
from adapters.postgres.projection_runner import statuses
from adapters.postgres.reactor_host import ReactorHost
from adapters.postgres.reactor_runner import ReactionFailedError, ReactorRunner
from application.app import Teaim
from application.ingestion import IngestionPipeline
from application.ingestion_ports import ExtractedText, IngestJob
from application.ingestion_reactor import REACTOR_NAME, IngestionReactor
from application.reactors import Reaction, effect_id_at
from domain.artifact import Artifact, ExtractionMethod, IngestionState
from tests.support.apps import open_app, seed_org
from tests.support.catch_up import run_to_head
from tests.support.contexts import user
from tests.support.ingest_doubles import (
    HashEmbedder,
    MemoryEmbeddingCaches,
    MemoryQueue,
    ScriptedExtractor,
    upload,
)
from tests.support.reactors import Crash
from tests.support.tables import head


class CrashingReactor(IngestionReactor):
    """Dies (the process is gone) between the enqueue and its outcome, once, when armed."""

    crash_before_record = False

    def record(self, reaction: Reaction, outcome: IngestJob | None) -> None:
        if self.crash_before_record:
            self.crash_before_record = False
            raise Crash("killed between the enqueue and IngestionQueued")
        super().record(reaction, outcome)


class PickyQueue(MemoryQueue):
    """Refuses every job of the orgs in `broken` (a target down for them only)."""

    def __init__(self) -> None:
        super().__init__()
        self.broken: set[UUID] = set()

    def enqueue(self, job: IngestJob) -> None:
        if job.org_id in self.broken:
            raise ConnectionError(f"queue refuses org {job.org_id}")
        super().enqueue(job)


@dataclass
class Scene:
    app: Teaim
    url: str
    org: UUID
    project: UUID
    blobs: LocalBlobStore
    queue: PickyQueue
    reactor: CrashingReactor

    def runner(self, **options: int) -> ReactorRunner:
        return ReactorRunner(
            self.reactor, DatabaseUrl.parse(self.url), self.app.mapper.to_domain_event, **options
        )

    def catch_up(self, runner: ReactorRunner | None = None) -> int:
        return run_to_head(self.url, runner or self.runner())

    def upload(self, org: UUID | None = None, project: UUID | None = None) -> UUID:
        return upload(
            self.app.save, self.blobs, org or self.org, project or self.project, b"some text"
        ).artifact_id

    def queued_events(self) -> int:
        with psycopg.connect(self.url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM teaim_events WHERE topic LIKE %s",
                ("%Artifact.IngestionQueued",),
            ).fetchone()
        assert row is not None
        return int(row[0])

    def artifact(self, artifact_id: UUID) -> Artifact:
        found: object = self.app.repository.get(artifact_id)
        assert isinstance(found, Artifact)
        return found


@pytest.fixture
def scene(database_url: str, tmp_path: Path) -> Iterator[Scene]:
    app = open_app(database_url)
    try:
        org, project, _ = seed_org(app)
        queue = PickyQueue()
        yield Scene(
            app, database_url, org, project, LocalBlobStore(tmp_path), queue,
            CrashingReactor(app, queue),
        )  # fmt: skip
    finally:
        app.close()


def test_each_upload_is_enqueued_once_and_ingestion_queued_is_recorded(scene: Scene) -> None:
    artifacts = [scene.upload() for _ in range(3)]

    scene.catch_up()

    assert len(scene.queue.jobs) == 3
    for artifact_id in artifacts:
        job_id = effect_id_at(REACTOR_NAME, artifact_id, 1)
        job = scene.queue.jobs[job_id]
        assert (job.org_id, job.project_id, job.artifact_id, job.content_version) == (
            scene.org,
            scene.project,
            artifact_id,
            1,
        )
        artifact = scene.artifact(artifact_id)
        assert (artifact.ingestion, artifact.job_id) == (IngestionState.QUEUED, job_id)
    assert scene.queued_events() == 3


def test_a_replay_from_zero_enqueues_nothing_again(scene: Scene) -> None:
    for _ in range(3):
        scene.upload()
    scene.catch_up()
    calls = list(scene.queue.calls)
    runner = scene.runner()
    with psycopg.connect(scene.url) as conn:
        conn.execute("UPDATE projection_tracking SET position = 0 WHERE name = %s", (runner.name,))

    assert scene.catch_up(runner) == head(scene.url)

    assert scene.queue.calls == calls
    assert scene.queued_events() == 3


def test_a_crash_between_enqueue_and_outcome_enqueues_the_same_job_id_again(
    scene: Scene,
) -> None:
    artifact_id = scene.upload()
    scene.reactor.crash_before_record = True
    with pytest.raises(Crash):
        scene.catch_up()
    assert scene.queued_events() == 0

    scene.catch_up()  # the restarted process

    job_id = effect_id_at(REACTOR_NAME, artifact_id, 1)
    assert scene.queue.calls == [job_id, job_id]  # at least once, under one id
    assert list(scene.queue.jobs) == [job_id]
    assert scene.queued_events() == 1


def test_a_queue_down_for_one_org_halts_only_that_org(scene: Scene) -> None:
    other_org, other_project, _ = seed_org(scene.app)
    scene.queue.broken.add(other_org)
    poisoned = scene.upload(other_org, other_project)
    healthy = scene.upload()
    runner = scene.runner(max_attempts=2)

    with pytest.raises(ReactionFailedError, match="queue refuses"):
        scene.catch_up(runner)
    scene.catch_up(runner)  # the second failure halts the other org; this org goes on

    assert scene.artifact(healthy).ingestion == IngestionState.QUEUED
    assert scene.artifact(poisoned).ingestion == IngestionState.PENDING
    with psycopg.connect(scene.url) as conn:
        (status,) = statuses(conn, [runner.name])
    assert [halt.org_id for halt in status.halts] == [other_org]


def test_jobs_end_indexed_and_a_reingest_queues_a_new_job(scene: Scene, tmp_path: Path) -> None:
    extractor = ScriptedExtractor(ExtractedText(ExtractionMethod.TEXT, ["alpha beta gamma"]))
    pipeline = IngestionPipeline(
        scene.app, scene.blobs, extractor, HashEmbedder(), MemoryEmbeddingCaches().for_project,
        work_dir=tmp_path,
    )  # fmt: skip
    artifact_id = scene.upload()
    scene.catch_up()
    for job in list(scene.queue.jobs.values()):
        pipeline.run(job)
    assert scene.artifact(artifact_id).ingestion == IngestionState.INDEXED

    owner = user("owner", scene.org, cid="reingest")
    scene.app.reingest_artifact(ctx=owner, project_id=scene.project, artifact_id=artifact_id)
    scene.catch_up()

    assert len(scene.queue.jobs) == 2
    newest = list(scene.queue.jobs.values())[-1]
    pipeline.run(newest)
    assert scene.artifact(artifact_id).ingestion == IngestionState.INDEXED
    assert len(extractor.seen) == 2


def test_the_reactor_host_enqueues_while_it_runs(scene: Scene) -> None:
    host = ReactorHost(
        [scene.reactor], DatabaseUrl.parse(scene.url), scene.app.mapper.to_domain_event
    )
    host.start()
    try:
        artifact_id = scene.upload()
        deadline = time.monotonic() + 20
        while scene.artifact(artifact_id).ingestion != IngestionState.QUEUED:
            assert time.monotonic() < deadline, "the hosted reactor never queued the job"
            time.sleep(0.05)
    finally:
        host.stop()
    assert list(scene.queue.jobs) == [effect_id_at(REACTOR_NAME, artifact_id, 1)]
