"""Stand-ins for the ports under retrieval, for unit tests of the logic above them (bounds,
guards, auditing, the scope check on what an index or answerer returns), and scenes of
documents recorded as the upload and ingestion paths record them.

What a search finds is never tested on a stand-in: the API and integration tests run the real
`rag_chunks` projection, `PostgresChunkSearch` and the real embedder (tests/support/indexing.py).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from application.app import Teaim
from application.ingestion_ports import Answer, ChunkHit, Citation
from application.retrieval import AnswerUnavailableError
from domain.artifact import Artifact, Content, ContentSource, ExtractionMethod
from domain.blob_keys import blob_prefix
from domain.stamps import Stamp
from tests.support.fake_embedder import FakeEmbedder

_WORD = re.compile(r"\w+")


class RecordingIndex:
    """A chunk index for tests of what sits above it (guards, bounds, auditing): it records
    each search it is asked for and finds nothing. What a search finds is tested on the real
    index (tests/integration/test_retrieval_index.py, tests/api/test_rag_api.py)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def search(
        self,
        *,
        org_id: UUID,
        project_id: UUID,
        query_text: str,
        query_vector: Sequence[float],
        k: int,
        as_of_position: int | None = None,
    ) -> list[ChunkHit]:
        """Record the search; no hits."""
        assert query_text
        assert len(query_vector) == FakeEmbedder.dimensions
        self.calls.append(
            {"org_id": org_id, "project_id": project_id, "k": k, "as_of": as_of_position}
        )
        return []

    def search_public(
        self, *, query_text: str, query_vector: Sequence[float], k: int
    ) -> list[ChunkHit]:
        """Record the search; no hits."""
        self.calls.append({"public": query_text, "k": k, "dimensions": len(query_vector)})
        return []


class ForeignIndex:
    """An index bug: it returns another project's chunk with the project's own."""

    def __init__(self, own: ChunkHit, foreign: ChunkHit) -> None:
        self.hits = [foreign, own]

    def search(self, **_query: object) -> list[ChunkHit]:
        """Both chunks, whatever the scope."""
        return list(self.hits)

    def search_public(self, **_query: object) -> list[ChunkHit]:
        """Nothing public."""
        return []


class CitingEverything:
    """An answerer that cites a source it was never given."""

    def __init__(self, stray: Citation) -> None:
        self.stray = stray
        self.given: list[ChunkHit] = []

    def answer(self, question: str, chunks: Sequence[ChunkHit]) -> Answer:
        """Cites every chunk given, and the stray source."""
        assert question
        self.given = list(chunks)
        own = [Citation(c.source_kind, c.source_id, c.source_name, c.page, c.text) for c in chunks]
        return Answer(text="x [1] [2]", citations=[*own, self.stray], answered_by="test")


class DownAnswerer:
    """An answerer whose endpoint is down."""

    def answer(self, question: str, chunks: Sequence[ChunkHit]) -> Answer:
        """Always unavailable."""
        raise AnswerUnavailableError(f"down ({question[:5]}, {len(chunks)})")


class FixedPositions:
    """Log positions by moment: the position recorded for the latest moment not after it."""

    def __init__(self, marks: dict[datetime, int] | None = None) -> None:
        self.marks = marks or {}
        self.asked: list[tuple[UUID, UUID, datetime]] = []

    def position_at(self, org_id: UUID, project_id: UUID, at: datetime) -> int:
        """The position marked for the latest moment at or before `at` (0: none)."""
        self.asked.append((org_id, project_id, at))
        earlier = [p for moment, p in self.marks.items() if moment <= at]
        return max(earlier, default=0)


# Scenes -------------------------------------------------------------------------------------


def add_document(
    app: Teaim,
    *,
    stamp: Stamp,
    artifact_id: UUID,
    name: str,
    pages: list[str],
    job_id: UUID,
) -> int:
    """A document uploaded and its text extracted, as the upload and ingestion paths record
    them (their commands are other modules'); the position of the text's event."""
    assert stamp.project_id is not None
    content = Content(
        blob_key=f"{blob_prefix(stamp.org_id, stamp.project_id)}{artifact_id}__{name}",
        mime="text/plain",
        claimed_mime="text/plain",
        size=sum(len(p) for p in pages),
        sha256=hashlib.sha256("\f".join(pages).encode()).hexdigest(),
        source=ContentSource.UPLOAD,
    )
    artifact = Artifact.upload(
        artifact_id=artifact_id, name=name, content=content, tags=[], stamp=stamp
    )
    artifact.ingestion_queued(job_id=job_id, stamp=stamp)
    artifact.record_text(job_id=job_id, method=ExtractionMethod.TEXT, pages=pages, stamp=stamp)
    recordings = app.save(artifact)
    return max(r.notification.id for r in recordings)


def give_content(app: Teaim, *, stamp: Stamp, artifact_id: UUID) -> None:
    """A content version with its text for a registered document (so it can be published)."""
    assert stamp.project_id is not None
    artifact: object = app.repository.get(artifact_id)
    assert isinstance(artifact, Artifact)
    artifact.upload_version(
        content=Content(
            blob_key=f"{blob_prefix(stamp.org_id, stamp.project_id)}{artifact_id}__v",
            mime="text/plain",
            claimed_mime=None,
            size=1,
            sha256="ef" * 32,
            source=ContentSource.UPLOAD,
        ),
        stamp=stamp,
    )
    # Text someone could read: only such a document may be published.
    artifact.record_text(
        job_id=uuid4(), method=ExtractionMethod.TEXT, pages=["content"], stamp=stamp
    )
    app.save(artifact)
