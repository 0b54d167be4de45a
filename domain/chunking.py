"""Cutting a document's pages into overlapping chunks for retrieval (pure, deterministic).

The RAG index (a projection) and the ingestion worker (which embeds chunks before it records
that a document is indexed) both chunk the same text with this one function, so the worker's
embeddings are found again by content hash when the projection writes the chunk rows, and a
rebuild of the index computes nothing.

Chunks are counted in words, not model tokens: all-MiniLM-L6-v2 reads at most 256 word
pieces, and 180 words of ordinary prose are about 230 pieces, so a chunk is rarely cut by the
model. A chunk may run over a page break; it keeps the pages it starts and ends on.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

CHUNK_WORDS = 180
OVERLAP_WORDS = 40
# A document cut to MAX_TEXT_CHARS yields at most about 2,000 chunks at these sizes; the
# bound here guards the projection batch even if the text bounds change.
MAX_CHUNKS = 5_000
# A "word" longer than this is not prose (base64, a run of symbols): it is cut, so one token
# cannot make a chunk arbitrarily long.
MAX_WORD_CHARS = 64


@dataclass(frozen=True, slots=True)
class Chunk:
    """One retrievable piece of a document: its place, its text, and its content hash."""

    index: int
    page: int  # 1-based page the chunk starts on
    page_end: int
    text: str
    sha256: str


def chunk_pages(
    pages: list[str], *, words: int = CHUNK_WORDS, overlap: int = OVERLAP_WORDS
) -> list[Chunk]:
    """The chunks of `pages` (page 1 first): windows of `words` words, `overlap` shared."""
    if not 0 <= overlap < words:
        raise ValueError("overlap must be smaller than the chunk size")
    tagged = [
        (page_no, word[:MAX_WORD_CHARS])
        for page_no, page in enumerate(pages, start=1)
        for word in page.split()
    ]
    chunks: list[Chunk] = []
    step = words - overlap
    start = 0
    while start < len(tagged) and len(chunks) < MAX_CHUNKS:
        window = tagged[start : start + words]
        text = " ".join(word for _, word in window)
        chunks.append(
            Chunk(
                index=len(chunks),
                page=window[0][0],
                page_end=window[-1][0],
                text=text,
                sha256=text_sha256(text),
            )
        )
        if start + words >= len(tagged):
            break
        start += step
    return chunks


def text_sha256(text: str) -> str:
    """The content hash embeddings are cached under (with the model's id)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
