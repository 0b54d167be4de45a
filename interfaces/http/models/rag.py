"""Request and response models of retrieval: project search and ask, and the marketplace."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, Field, StringConstraints

from application.ingestion_ports import Answer, ChunkHit
from application.retrieval import (
    DEFAULT_ASK_K,
    MAX_K,
    MAX_QUESTION_CHARS,
    MIN_K,
    snippet,
)
from interfaces.http.models import In

SourceKind = Literal["artifact", "memory"]
Question = Annotated[str, StringConstraints(min_length=1, max_length=MAX_QUESTION_CHARS)]


class ChunkOut(BaseModel):
    """One retrieved chunk: where it comes from, an excerpt around the match, its score."""

    source_kind: SourceKind = Field(description="A document (`artifact`) or a `memory`.")
    source_id: UUID = Field(description="The artifact's or the memory's id.")
    source_name: str = Field(description="The document's name or the memory's title.")
    page: int | None = Field(description="The page the chunk starts on (documents with pages).")
    chunk_index: int
    snippet: str = Field(description="A bounded excerpt of the chunk around the matching words.")
    score: float = Field(description="Reciprocal rank fusion of the vector and full-text ranks.")


class SearchOut(BaseModel):
    """A project's best chunks for a query."""

    items: list[ChunkOut]
    as_of_position: int | None = Field(
        default=None, description="The log position searched as of (when `as_of` was given)."
    )


class AskIn(In):
    """A question about the project's documents and memories."""

    question: Question
    k: int = Field(
        default=DEFAULT_ASK_K, ge=MIN_K, le=MAX_K, description="Chunks the answer may draw on."
    )


class CitationOut(BaseModel):
    """The source of the answer's sentences marked `[marker]`."""

    marker: int
    source_kind: SourceKind
    source_id: UUID
    source_name: str
    page: int | None
    snippet: str


class AskOut(BaseModel):
    """An answer built only from the project's own chunks, with its citations."""

    answer: str
    answered_by: str = Field(description="`extractive`, or the chat model's name.")
    citations: list[CitationOut]


class MarketplaceHitOut(BaseModel):
    """A chunk of a published document. Who published it (org, project) is not shown: a
    document is published, its owners' names and other projects are not."""

    artifact_id: UUID
    name: str = Field(description="The published document's name.")
    page: int | None
    snippet: str
    score: float


class MarketplaceOut(BaseModel):
    """The best chunks of published documents, across every org."""

    items: list[MarketplaceHitOut]


def chunk_out(hit: ChunkHit, query: str) -> ChunkOut:
    """A hit as a search returns it."""
    return ChunkOut(
        source_kind="memory" if hit.source_kind == "memory" else "artifact",
        source_id=hit.source_id,
        source_name=hit.source_name,
        page=hit.page,
        chunk_index=hit.chunk_index,
        snippet=snippet(hit.text, query),
        score=hit.score,
    )


def ask_out(answer: Answer) -> AskOut:
    """An answer and its citations, numbered as the answer's markers."""
    return AskOut(
        answer=answer.text,
        answered_by=answer.answered_by,
        citations=[
            CitationOut(
                marker=number,
                source_kind="memory" if c.source_kind == "memory" else "artifact",
                source_id=c.source_id,
                source_name=c.source_name,
                page=c.page,
                snippet=c.snippet,
            )
            for number, c in enumerate(answer.citations, start=1)
        ],
    )


def marketplace_out(hits: list[ChunkHit], query: str) -> MarketplaceOut:
    """Published chunks, without their org or project."""
    return MarketplaceOut(
        items=[
            MarketplaceHitOut(
                artifact_id=h.source_id,
                name=h.source_name,
                page=h.page,
                snippet=snippet(h.text, query),
                score=h.score,
            )
            for h in hits
            if h.source_kind == "artifact"
        ]
    )
