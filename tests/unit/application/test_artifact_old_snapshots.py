"""Artifacts recorded before documents had content and ingestion still load.

An artifact registered before this issue has a `Registered` event (metadata only), and its
snapshot, if one was taken, holds only the fields the aggregate had then.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

from eventsourcing.domain import Snapshot

from application.app import Teaim
from domain.artifact import Artifact, IngestionState
from domain.stamps import Stamp
from tests.support.apps import make_app, seed_org

# The fields an artifact had before uploads and ingestion existed.
OLD_FIELDS = frozenset(
    {"project_id", "name", "mime", "size", "sha256", "blob_key", "tags", "deleted"}
)
SHA = "ab" * 32


def registered(app: Teaim) -> tuple[UUID, Stamp]:
    org, project, _ = seed_org(app)
    stamp = Stamp(org, "owner", "old", datetime.now(UTC), project_id=project)
    artifact = Artifact.register(
        artifact_id=uuid4(), name="old.pdf", mime="application/pdf", size=10, sha256=SHA,
        tags=["legacy"], stamp=stamp,
    )  # fmt: skip
    artifact.rename(name="older.pdf", stamp=stamp)
    app.save(artifact)
    return artifact.id, stamp


def old_snapshot(app: Teaim, artifact_id: UUID) -> None:
    """Store a snapshot shaped as one taken before this issue (no content or ingestion keys)."""
    artifact: object = app.repository.get(artifact_id)
    assert isinstance(artifact, Artifact)
    snapshot = Snapshot.take(artifact)
    kept = {k: v for k, v in snapshot.state.items() if k in OLD_FIELDS or k.startswith("_")}
    old = Snapshot(
        originator_id=snapshot.originator_id,
        originator_version=snapshot.originator_version,
        timestamp=snapshot.timestamp,
        topic=snapshot.topic,
        state=kept,
    )
    assert app.snapshots is not None
    app.snapshots.put([old])


def test_an_artifact_with_only_registered_events_loads_without_content() -> None:
    app = make_app()
    artifact_id, _ = registered(app)
    artifact: object = app.repository.get(artifact_id)
    assert isinstance(artifact, Artifact)
    assert artifact.ingestion == IngestionState.NO_CONTENT
    assert (artifact.content_version, artifact.jobs_done, artifact.published) == (0, [], False)


def test_a_snapshot_taken_before_ingestion_existed_still_loads_and_changes() -> None:
    app = make_app()
    artifact_id, stamp = registered(app)
    old_snapshot(app, artifact_id)

    artifact: object = app.repository.get(artifact_id)
    assert isinstance(artifact, Artifact)
    assert artifact.name == "older.pdf"
    assert artifact.ingestion == IngestionState.NO_CONTENT
    assert artifact.job_id is None
    assert not artifact.outcome_recorded(uuid4())
    artifact.retag(tags=["kept"], stamp=stamp)
    app.save(artifact)

    again: object = app.repository.get(artifact_id)
    assert isinstance(again, Artifact)
    assert (again.tags, again.content_version, again.published) == (["kept"], 0, False)
