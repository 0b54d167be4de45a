"""Documents end to end through the real runtime, as `teaim serve` runs it: uploads over HTTP,
the ingestion reactor enqueueing on the fair queue, the queue's workers running the real
pipeline (extraction, Tesseract and Poppler, the MiniLM embedder), every projection on its
host; then search and ask over HTTP find the words, with the right document and page.

Every wait is on a condition with a deadline: the artifact reaching a settled ingestion
state, then the index applying that position (`min_position`, the read-your-writes wait).
With Tesseract hidden (TESSERACT_CMD pointing nowhere) a scan lands in the review queue's
`needs_ocr` lane, and the text a person types in is indexed. Hostile files end in the
`failed` lane with a named reason, with no text recorded and nothing indexed (the upload
refusals are tests/api/test_artifact_upload.py (polyglots, crafted names) and
test_artifact_streaming.py (oversize)).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from starlette.exceptions import StarletteDeprecationWarning

from domain.artifact import Artifact, IngestionState
from interfaces.reactors import start_reactors
from interfaces.runtime import Runtime, start_ingest, start_projections
from tests.api.conftest import Api, dev
from tests.support.ocr_tools import ocr_tools  # noqa: F401 (a fixture)
from tests.support.sample_files import (
    bomb_png,
    corrupt_pdf,
    encrypted_pdf,
    image_only_pdf,
    png_of_text,
    zip_bomb_docx,
)
from tests.support.uploads import upload

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

# Generous: OCR of a 300 dpi page on a shared CI core takes seconds, and a failing test
# should say what state it was stuck in rather than hang.
SETTLE_SECONDS = 240.0
SETTLED = {IngestionState.INDEXED, IngestionState.NEEDS_OCR, IngestionState.FAILED}
# One DATA_DIR for this module's apps: the workers' model is the process's one per models
# directory (interfaces.embedding.shared_embedder), so it loads once, not once per test.
# Blob keys hold their org and project, so the apps' files never meet.
_DATA_DIR = Path(tempfile.mkdtemp(prefix="teaim-e2e-tests-"))
atexit.register(shutil.rmtree, _DATA_DIR, ignore_errors=True)


@dataclass
class Served:
    """One app with its runtime running everything `teaim serve` runs in-process."""

    client: httpx.Client
    runtime: Runtime
    org: UUID
    project: UUID

    @property
    def owner(self) -> dict[str, str]:
        return dev("olive", self.org)

    def upload(self, filename: str, data: bytes, content_type: str) -> httpx.Response:
        return upload(
            self.client, self.project, self.owner, filename=filename, data=data,
            content_type=content_type,
        )  # fmt: skip

    def uploaded(self, filename: str, data: bytes, content_type: str) -> UUID:
        response = self.upload(filename, data, content_type)
        assert response.status_code == 201, response.text
        return UUID(response.json()["id"])

    def artifact(self, artifact_id: UUID) -> Artifact:
        found: object = self.runtime.app.repository.get(artifact_id)
        assert isinstance(found, Artifact)
        return found

    def settled(
        self, artifact_id: UUID, done: Callable[[Artifact], bool] | None = None
    ) -> Artifact:
        """The artifact once its ingestion settled (or `done` holds), within the deadline."""
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            artifact = self.artifact(artifact_id)
            if (done or (lambda a: a.ingestion in SETTLED))(artifact):
                return artifact
            assert time.monotonic() < deadline, f"still {artifact.ingestion} after the deadline"
            threading.Event().wait(0.1)

    def head(self) -> int:
        return self.runtime.app.recorder.max_notification_id() or 0

    def search(self, q: str, k: int = 5) -> list[dict[str, Any]]:
        """Search once the index applied everything recorded so far."""
        response = self.client.get(
            f"/api/projects/{self.project}/rag/search",
            params={"q": q, "k": k, "min_position": self.head()},
            headers=self.owner,
        )
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    def review_queue(self, lane: str) -> list[dict[str, Any]]:
        response = self.client.get(
            f"/api/projects/{self.project}/review-queue",
            params={"lane": lane, "min_position": self.head()},
            headers=self.owner,
        )
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    def chunk_count(self, artifact_id: UUID) -> int:
        with psycopg.connect(self.runtime.database.url.libpq()) as conn:
            row = conn.execute(
                "SELECT count(*) FROM rag_chunks WHERE source_id = %s", (artifact_id,)
            ).fetchone()
        assert row is not None
        return int(row[0])


@contextmanager
def serving(api: Api, build_app: Callable[..., FastAPI], **overrides: Any) -> Iterator[Served]:
    """A new app on the test's database with these settings, its projections, ingestion
    workers and reactors running (stopped with its runtime, by `build_app`)."""
    app = build_app(data_dir=_DATA_DIR, **overrides)
    runtime: Runtime = app.state.runtime
    with TestClient(app, raise_server_exceptions=False) as client:
        start_projections(runtime)
        assert start_ingest(runtime, workers=2) is not None
        assert runtime.ingest_queue is not None
        start_reactors(runtime, runtime.ingest_queue)
        org = api.new_org()
        response = client.post(
            "/api/projects", json={"code": "DOCS", "name": "Docs"}, headers=dev("olive", org)
        )
        assert response.status_code == 201, response.text
        yield Served(client, runtime, org, UUID(response.json()["id"]))


@pytest.fixture
def served(api: Api, build_app: Callable[..., FastAPI]) -> Iterator[Served]:
    with serving(api, build_app) as served:
        yield served


@pytest.mark.usefixtures("ocr_tools")
def test_markdown_a_png_scan_and_an_image_only_pdf_become_searchable_and_cited(
    served: Served,
) -> None:
    notes = served.uploaded(
        "notes.md",
        b"# Kickoff\n\nThe steering committee chose the quarry site for the new depot.\n",
        "text/markdown",
    )
    scan = served.uploaded(
        "scan.png", png_of_text(["harbour lantern", "meadow copper"]), "image/png"
    )
    pdf = served.uploaded(
        "fax.pdf", image_only_pdf([["violet thunder", "invoice settled"]]), "application/pdf"
    )
    for artifact_id, method in ((notes, "markdown"), (scan, "ocr_image"), (pdf, "ocr_pdf")):
        artifact = served.settled(artifact_id)
        assert artifact.ingestion == IngestionState.INDEXED, (artifact_id, artifact.reason)
        assert str(artifact.method) == method

    for q, artifact_id, name in (
        ("quarry depot", notes, "notes.md"),
        ("lantern copper", scan, "scan.png"),
        ("violet thunder invoice", pdf, "fax.pdf"),
    ):
        first = served.search(q)[0]
        assert (first["source_id"], first["source_name"], first["page"]) == (
            str(artifact_id), name, 1,
        )  # fmt: skip
    response = served.client.post(
        f"/api/projects/{served.project}/rag/ask",
        json={"question": "Where does the harbour lantern stand?", "k": 3},
        headers=served.owner,
    )
    assert response.status_code == 200, response.text
    citations = response.json()["citations"]
    assert citations[0]["source_id"] == str(scan)
    assert citations[0]["page"] == 1
    assert "lantern" in citations[0]["snippet"].lower()


def test_with_tesseract_hidden_a_scan_waits_for_a_person_whose_text_is_indexed(
    api: Api, build_app: Callable[..., FastAPI]
) -> None:
    with serving(api, build_app, tesseract_cmd="/nonexistent/tesseract") as served:
        scan = served.uploaded("scan.png", png_of_text(["harbour lantern"]), "image/png")
        assert served.settled(scan).ingestion == IngestionState.NEEDS_OCR
        (item,) = served.review_queue("needs_ocr")
        assert (item["artifact_id"], item["reason"]) == (str(scan), "tesseract_missing")
        assert served.chunk_count(scan) == 0

        resolved = served.client.post(
            f"/api/projects/{served.project}/review-queue/{item['id']}/resolve",
            json={"action": "text", "text": "The harbour lantern is lit at dusk by the keeper."},
            headers=served.owner,
        )
        assert resolved.status_code == 202, resolved.text
        indexed = served.settled(scan, lambda a: a.ingestion == IngestionState.INDEXED)
        assert str(indexed.method) == "manual"
        first = served.search("lantern keeper dusk")[0]
        assert first["source_id"] == str(scan)
        assert "keeper" in first["snippet"]
        assert served.review_queue("needs_ocr") == []


HOSTILE: list[tuple[str, Callable[[], bytes], str, str]] = [
    ("bomb.png", bomb_png, "image/png", "too_many_pixels"),
    ("bomb.docx", zip_bomb_docx, "application/octet-stream", "zip_bomb"),
    ("broken.pdf", corrupt_pdf, "application/pdf", "corrupt_pdf"),
    ("locked.pdf", lambda: encrypted_pdf(["classified words"]), "application/pdf", "encrypted_pdf"),
]


def test_hostile_files_end_in_the_failed_lane_with_a_named_reason_and_nothing_indexed(
    served: Served,
) -> None:
    """Each is accepted as bytes (the upload cannot know without parsing) and refused by the
    guarded extractor with its reason: no text recorded, no chunk, a failed-lane item."""
    landed = {
        served.uploaded(filename, make(), content_type): reason
        for filename, make, content_type, reason in HOSTILE
    }
    for artifact_id, reason in landed.items():
        artifact = served.settled(artifact_id)
        assert (artifact.ingestion, artifact.reason) == (IngestionState.FAILED, reason)
        events = [type(e).__qualname__ for e in served.runtime.app.events.get(artifact_id)]
        assert "Artifact.TextExtracted" not in events
        assert "Artifact.Indexed" not in events
        assert served.chunk_count(artifact_id) == 0
    failed = {UUID(i["artifact_id"]): i["reason"] for i in served.review_queue("failed")}
    assert failed == landed
    assert served.review_queue("needs_ocr") == []
