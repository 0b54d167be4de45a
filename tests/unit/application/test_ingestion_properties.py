"""Ingestion under any interleaving of requests, retries, replays, crashes and burials.

A document goes through random runs of: the reactor catching up, jobs run (newest, oldest,
again), an embedder that fails once, an extractor that raises, the queue burying a job,
reingest requests, new versions and corrected text. Whatever the order:

- no call of the use case raises anything but the injected failures (a replay or a stale job
  is skipped, never an error);
- each job records at most one outcome and at most one `Indexed`;
- once the reactor has caught up and every queued job has run with healthy parts, the
  document rests: indexed, or waiting for a person (needs OCR, failed), never half-way.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections import Counter
from pathlib import Path
from uuid import UUID

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from application.ingestion_ports import ExtractedText, ExtractionRefused, OcrNeeded
from domain.artifact import Artifact, ExtractionMethod, IngestionState
from domain.errors import NotFoundError
from tests.support.apps import make_app, seed_org
from tests.support.contexts import user
from tests.support.ingest_doubles import EmbedderDownError, IngestRig, stored_content, upload

OUTCOMES = (
    ExtractedText(ExtractionMethod.TEXT, ["some words " * 50]),
    OcrNeeded("ocr_empty", "nothing found", 1),
    ExtractionRefused("corrupt_pdf", "bad"),
)
# The common moves weigh more, so that runs get somewhere.
ACTIONS = (
    *("react",) * 3,
    *("run_newest",) * 3,
    "run_oldest",
    "run_all",
    *("embed_fails",) * 2,
    "extract_raises",
    "bury_newest",
    *("reingest",) * 2,
    "version",
    "resolve",
)
REST = {IngestionState.INDEXED, IngestionState.NEEDS_OCR, IngestionState.FAILED}


class InjectedError(Exception):
    """A failure the test injected (the queue would retry the job)."""


def _run(rig: IngestRig, job_index: int) -> None:
    jobs = list(rig.queue.jobs.values())
    if not jobs:
        return
    # Only the injected failures may escape (the queue would retry the job).
    with contextlib.suppress(InjectedError, EmbedderDownError):
        rig.pipeline.run(jobs[job_index])


def _act(rig: IngestRig, org: UUID, project: UUID, artifact_id: UUID, action: str) -> None:
    owner = user("owner", org, cid=action)
    if action == "react":
        rig.react(artifact_id)
    elif action in ("run_newest", "run_oldest"):
        _run(rig, -1 if action == "run_newest" else 0)
    elif action == "run_all":
        for index in range(len(rig.queue.jobs)):
            _run(rig, index)
    elif action == "embed_fails":
        rig.embedder.failures_left = 1
    elif action == "extract_raises":
        rig.extractor.error = InjectedError("extractor crashed")
    elif action == "bury_newest" and rig.queue.jobs:
        rig.pipeline.on_dead(list(rig.queue.jobs.values())[-1], "ingest_failed", "gave up", 5)
    elif action == "reingest":
        rig.app.reingest_artifact(ctx=owner, project_id=project, artifact_id=artifact_id)
        rig.react(artifact_id)
    elif action == "version":
        artifact: object = rig.app.repository.get(artifact_id)
        assert isinstance(artifact, Artifact)
        artifact.upload_version(
            content=stored_content(rig.blobs, org, project, b"v" * len(rig.queue.jobs)),
            stamp=rig.app._stamp(owner, project),
        )
        rig.app.save(artifact)
        rig.react(artifact_id)
    elif action == "resolve":
        # Not waiting for a person right now: no item.
        with contextlib.suppress(NotFoundError):
            rig.app.resolve_review_item(
                ctx=owner, project_id=project, artifact_id=artifact_id, pages=["typed"]
            )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    outcome=st.sampled_from(OUTCOMES),
    later=st.sampled_from(OUTCOMES),
    actions=st.lists(st.sampled_from(ACTIONS), min_size=4, max_size=30),
)
def test_any_interleaving_ends_at_rest_with_one_outcome_per_job(
    outcome: ExtractedText | OcrNeeded | ExtractionRefused,
    later: ExtractedText | OcrNeeded | ExtractionRefused,
    actions: list[str],
) -> None:
    app = make_app()
    org, project, _ = seed_org(app)
    with tempfile.TemporaryDirectory() as tmp:
        rig = IngestRig(app, Path(tmp))
        rig.extractor.outcome = outcome
        artifact_id = upload(app.save, rig.blobs, org, project, b"first").artifact_id
        rig.react(artifact_id)  # queued; the actions decide when (and how) it runs
        for action in actions[:3]:
            _act(rig, org, project, artifact_id, action)
        rig.extractor.outcome = later
        for action in actions[3:]:
            _act(rig, org, project, artifact_id, action)

        # Healthy parts from here on: the reactor catches up, every queued job runs.
        rig.extractor.error = None
        rig.embedder.failures_left = 0
        for _ in range(3):
            rig.react(artifact_id)
            for job in list(rig.queue.jobs.values()):
                rig.pipeline.run(job)

        events = list(app.artifact_events_after(artifact_id, 0))
        outcomes = Counter(
            e.job_id
            for e in events
            if isinstance(e, Artifact.TextExtracted | Artifact.OcrNeeded | Artifact.IngestionFailed)
        )
        indexed = Counter(e.job_id for e in events if isinstance(e, Artifact.Indexed))
        assert max(outcomes.values(), default=1) == 1, outcomes
        assert max(indexed.values(), default=1) == 1, indexed
        final: object = app.repository.get(artifact_id)
        assert isinstance(final, Artifact)
        assert final.ingestion in REST, [type(e).__name__ for e in events]
    app.close()
