"""The review queue agrees with the artifacts, whatever happens to them in whatever order.

Random runs of real commands and worker outcomes on real artifacts (in-memory application),
then the projection over the log as the runner decodes it: a document has a row exactly when
its latest ingestion outcome left it needing a person and it was neither given text nor
deleted since; the lane is that outcome's; the row is `retrying` while a new attempt runs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from application.app import Teaim
from domain.artifact import Artifact, Content, ContentSource, ExtractionMethod, IngestionState
from domain.blob_keys import blob_prefix
from domain.stamps import Stamp
from projections.records import EventRecord, decode_event
from projections.review_queue import REVIEW_DOCUMENTS, REVIEW_QUEUE, ReviewQueueProjection
from tests.support.apps import make_app
from tests.unit.projections.support import project

ORG, PROJECT = uuid4(), uuid4()
# Steps a document may go through; the common path weighs more, so runs get somewhere.
STEPS = (
    *("queue",) * 4,
    *("ocr", "fail") * 2,
    "text",
    *("resolve",) * 2,
    "reingest",
    "index",
    "version",
    "rename",
    "delete",
)


def _content(n: int) -> Content:
    return Content(
        blob_key=f"{blob_prefix(ORG, PROJECT)}{uuid4()}__f.pdf",
        mime="application/pdf",
        claimed_mime=None,
        size=n,
        sha256=f"{n:064x}",
        source=ContentSource.UPLOAD,
    )


def _outcome(artifact: Artifact, step: str, stamp: Stamp, n: int) -> None:
    """A worker's outcome for the queued job, if a job is queued and has none yet."""
    job = artifact.job_id
    if job is None or artifact.outcome_recorded(job) or artifact.ingestion != "queued":
        return
    if step == "text":
        artifact.record_text(job_id=job, method=ExtractionMethod.TEXT, pages=["t"], stamp=stamp)
    elif step == "ocr":
        artifact.record_ocr_needed(
            job_id=job, reason="ocr_empty", detail="d", page_count=1, stamp=stamp
        )
    else:
        artifact.record_failure(
            job_id=job, reason="corrupt_pdf", detail="d", attempts=n, stamp=stamp
        )


def _step(artifact: Artifact, step: str, stamp: Stamp, n: int) -> None:
    """Apply one step if the artifact's rules allow it now (else nothing)."""
    state = artifact.ingestion
    if artifact.deleted:
        return
    if step in ("text", "ocr", "fail"):
        _outcome(artifact, step, stamp, n)
    elif step == "reingest":
        artifact.request_reingest(stamp=stamp)
    elif step == "queue":
        artifact.ingestion_queued(job_id=uuid4(), stamp=stamp)
    elif step == "resolve" and state in (IngestionState.NEEDS_OCR, IngestionState.FAILED):
        artifact.resolve_ocr(pages=["typed"], stamp=stamp)
    elif step == "index" and state == IngestionState.EXTRACTED:
        artifact.mark_indexed(
            job_id=artifact.job_id, chunk_count=1, embedding_model="m", stamp=stamp
        )
    elif step == "version":
        artifact.upload_version(content=_content(n + 1), stamp=stamp)
    elif step == "rename":
        artifact.rename(name=f"renamed-{n}.pdf", stamp=stamp)
    elif step == "delete":
        artifact.delete(stamp=stamp)


def _records(app: Teaim) -> list[EventRecord]:
    found = app.recorder.select_notifications(start=1, limit=100_000)
    return [
        decode_event(n.id, n.originator_id, n.originator_version, n.topic, n.state, current=True)  # type: ignore[arg-type]
        for n in found
    ]


def _expected(events: list[Any]) -> dict[str, Any] | None:
    """(lane, status) the queue should show for a document with these events (None: none)."""
    lane, status = None, "open"
    for event in events:
        if isinstance(event, Artifact.OcrNeeded):
            lane, status = "needs_ocr", "open"
        elif isinstance(event, Artifact.IngestionFailed):
            lane, status = "failed", "open"
        elif isinstance(event, Artifact.TextExtracted | Artifact.OcrResolved | Artifact.Deleted):
            lane = None
        elif isinstance(
            event, Artifact.ReingestRequested | Artifact.VersionUploaded | Artifact.IngestionQueued
        ):
            status = "retrying"
    return None if lane is None else {"lane": lane, "status": status}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    runs=st.lists(st.lists(st.sampled_from(STEPS), min_size=2, max_size=20), min_size=1, max_size=4)
)
def test_the_queue_shows_exactly_the_documents_waiting_for_a_person(
    runs: list[list[str]],
) -> None:
    app = make_app()
    ids: list[UUID] = []
    for n, steps in enumerate(runs):
        stamp = Stamp(ORG, "uploader", "prop", datetime.now(UTC), project_id=PROJECT)
        artifact = Artifact.upload(
            artifact_id=uuid4(), name=f"d{n}.pdf", content=_content(n + 1), tags=[], stamp=stamp
        )
        for k, step in enumerate(steps):
            _step(artifact, step, stamp, k + 1)
        app.save(artifact)
        ids.append(artifact.id)

    tables = project(ReviewQueueProjection(), _records(app)).tables

    rows = {row["artifact_id"]: row for row in tables.all(REVIEW_QUEUE)}
    for artifact_id in ids:
        history = list(app.artifact_events_after(artifact_id, 0))
        expected = _expected(history)
        row = rows.get(artifact_id)
        if expected is None:
            assert row is None, (history, row)
            continue
        assert row is not None, history
        assert {"lane": row["lane"], "status": row["status"]} == expected, history
        current: Any = app.repository.get(artifact_id)
        assert row["name"] == current.name
        assert row["content_version"] <= current.content_version
        if expected["status"] == "open":
            assert current.ingestion == (
                IngestionState.NEEDS_OCR
                if expected["lane"] == "needs_ocr"
                else IngestionState.FAILED
            )
    live = {row["artifact_id"] for row in tables.all(REVIEW_DOCUMENTS)}
    assert live == {a for a in ids if not app.repository.get(a).deleted}
