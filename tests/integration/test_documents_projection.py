"""The documents list follows an uploaded artifact's content versions and every ingestion
outcome, with the same transitions as the aggregate (its detail and its row agree)."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID, uuid4

import pytest

from application.documents import OnDuplicate
from domain.artifact import Artifact, Content, ContentSource, ExtractionMethod
from domain.blob_keys import blob_key
from domain.roles import Role
from domain.stamps import Stamp
from tests.integration.test_lists_projection import World
from tests.support.contexts import user

COLUMNS = ("content_version", "mime", "claimed_mime", "mime_mismatch", "ingestion", "method")
MORE = ("page_count", "reason", "published", "source", "source_url", "sha256", "size")


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    built = World(database_url)
    try:
        yield built
    finally:
        built.app.close()


def _content(org: UUID, project: UUID, sha: str, **extra: object) -> Content:
    fields: dict[str, object] = {
        "mime": "application/pdf",
        "claimed_mime": "image/png",
        "size": 10,
        "source": ContentSource.UPLOAD,
    }
    fields.update(extra)
    return Content(blob_key=blob_key(org, project, uuid4(), "a.pdf"), sha256=sha, **fields)  # type: ignore[arg-type]


def test_the_row_follows_versions_and_ingestion_outcomes(world: World) -> None:
    org = world.new_org()
    olive = user("olive", org, Role.OWNER)
    project = world.app.create_project(ctx=olive, code="DOCS", name="Docs").id
    first = world.app.record_upload(
        ctx=olive,
        project_id=project,
        name="a.pdf",
        tags=[],
        content=_content(org, project, "a" * 64),
    )
    artifact_id = first.id

    def check() -> None:
        world.catch_up()
        row = world.one("documents", id=artifact_id)
        artifact: Artifact = world.app.repository.get(artifact_id)
        assert isinstance(artifact, Artifact)
        expected = {
            name: getattr(artifact, name) for name in COLUMNS + MORE if name != "mime_mismatch"
        }
        assert {k: row[k] for k in expected} == expected
        assert row["mime_mismatch"] is (artifact.claimed_mime == "image/png")

    check()

    def act(method_name: str, **kwargs: object) -> None:
        artifact: Artifact = world.app.repository.get(artifact_id)
        stamp = Stamp(
            org_id=org,
            actor="worker",
            correlation_id=str(uuid4()),
            at=world.clock.now(),
            project_id=project,
        )
        getattr(artifact, method_name)(stamp=stamp, **kwargs)
        world.app.save(artifact)
        check()

    job = uuid4()
    act("ingestion_queued", job_id=job)
    act("record_ocr_needed", job_id=job, reason="tesseract_missing", detail="x", page_count=3)
    act("resolve_ocr", pages=["typed by hand"])
    act("mark_indexed", job_id=None, chunk_count=1, embedding_model="m")
    act("publish")
    act("request_reingest")
    second = uuid4()
    act("ingestion_queued", job_id=second)
    act("record_text", job_id=second, method=ExtractionMethod.PDF_TEXT, pages=["p1", "p2"])
    act("unpublish")
    # The same bytes again as a new version: content fields move, ingestion starts over.
    again = world.app.record_upload(
        ctx=olive,
        project_id=project,
        name="a.pdf",
        tags=[],
        content=_content(org, project, "a" * 64, claimed_mime="application/pdf"),
        on_duplicate=OnDuplicate.NEW_VERSION,
    )
    assert (again.id, again.content_version) == (artifact_id, 2)
    check()
    third = uuid4()
    act("ingestion_queued", job_id=third)
    act("record_failure", job_id=third, reason="corrupt_pdf", detail="d", attempts=3)
    row = world.one("documents", id=artifact_id)
    assert (row["ingestion"], row["reason"], row["content_version"]) == ("failed", "corrupt_pdf", 2)
