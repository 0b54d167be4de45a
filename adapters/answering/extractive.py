"""The default answerer: the retrieved sentences that best match the question, each cited.

No model writes anything: the answer is a few sentences copied from the project's own chunks,
each followed by the marker of its citation, so every word of it can be checked against its
source. Sentences are scored with BM25 (k1 = 1.2, b = 0.75) over the sentences of the given
chunks, the question's content words as the query; a sentence must share at least
`MIN_COVERAGE` of those words to count. Hand-written (about forty lines) rather than a
library: the scoring is the textbook formula over a few hundred sentences, and no library in
the lock does sentence-level BM25 without pulling in a tokenizer model. Deterministic: ties
break by the chunk's rank, then the sentence's place in it.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from application.ingestion_ports import Answer, ChunkHit, Citation

NAME = "extractive"
# Sentences an answer quotes, and the longest one it quotes whole.
MAX_SENTENCES = 3
MAX_SENTENCE_CHARS = 400
SNIPPET_CHARS = 240
# A sentence must share at least this share of the question's content words (and one word).
MIN_COVERAGE = 0.25
K1 = 1.2
B = 0.75

NOTHING_FOUND = "No document or memory of this project matched the question."
NOTHING_RELEVANT = (
    "The project's documents and memories that were searched do not answer this question."
)

_WORD = re.compile(r"\w+", re.UNICODE)
# A sentence ends at . ! ? (and their closing quotes or brackets) before a space, or at a
# line break; chunk text is words joined by single spaces, so this is all there is to see.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\n+")
# Words that say nothing about what is asked (English: the language of the default model).
_STOPWORDS_TEXT = """
    a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for
    from further had has have having he her here hers him his how i if in into is it its
    itself just me more most my no nor not now of off on once only or other our ours out
    over own same she should so some such than that the their theirs them then there these
    they this those through to too under until up very was we were what when where which
    while who whom why will with would you your yours tell show give find please
"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())


def terms(text: str) -> list[str]:
    """Lower-cased words of `text`, minus stopwords and one-letter words."""
    return [w for w in _WORD.findall(text.lower()) if len(w) > 1 and w not in STOPWORDS]


def sentences(text: str) -> list[str]:
    """`text` cut into sentences (long ones cut to MAX_SENTENCE_CHARS)."""
    found = []
    for part in _SENTENCE_END.split(text):
        sentence = part.strip()
        if sentence:
            found.append(_cut(sentence, MAX_SENTENCE_CHARS))
    return found


@dataclass(frozen=True, slots=True)
class _Candidate:
    chunk_rank: int
    order: int
    text: str
    words: Counter[str]


class ExtractiveAnswerer:
    """Answers with the best-matching sentences of the chunks, each with its citation."""

    answered_by = NAME

    def __init__(self, *, max_sentences: int = MAX_SENTENCES) -> None:
        self._max = max_sentences

    def answer(self, question: str, chunks: Sequence[ChunkHit]) -> Answer:
        """Up to `max_sentences` sentences of `chunks`, best first, each cited; or a plain
        statement that nothing relevant was found."""
        if not chunks:
            return Answer(text=NOTHING_FOUND, answered_by=NAME)
        query = list(dict.fromkeys(terms(question)))
        candidates = [
            _Candidate(rank, order, text, Counter(terms(text)))
            for rank, chunk in enumerate(chunks)
            for order, text in enumerate(sentences(chunk.text))
        ]
        chosen = self._best(query, candidates)
        if not chosen:
            return Answer(text=NOTHING_RELEVANT, answered_by=NAME)
        citations: list[Citation] = []
        marker_of: dict[int, int] = {}
        parts = []
        for candidate in chosen:
            if candidate.chunk_rank not in marker_of:
                chunk = chunks[candidate.chunk_rank]
                citations.append(
                    Citation(
                        source_kind=chunk.source_kind,
                        source_id=chunk.source_id,
                        source_name=chunk.source_name,
                        page=chunk.page,
                        snippet=_cut(candidate.text, SNIPPET_CHARS),
                    )
                )
                marker_of[candidate.chunk_rank] = len(citations)
            parts.append(f"{_closed(candidate.text)} [{marker_of[candidate.chunk_rank]}]")
        return Answer(text=" ".join(parts), citations=citations, answered_by=NAME)

    def _best(self, query: list[str], candidates: list[_Candidate]) -> list[_Candidate]:
        if not query or not candidates:
            return []
        count = len(candidates)
        average = sum(sum(c.words.values()) for c in candidates) / count or 1.0
        having = {t: sum(1 for c in candidates if t in c.words) for t in query}
        idf = {t: math.log(1 + (count - n + 0.5) / (n + 0.5)) for t, n in having.items()}
        needed = max(1, math.ceil(MIN_COVERAGE * len(query)))
        scored = []
        seen: set[str] = set()
        for c in candidates:
            matched = [t for t in query if t in c.words]
            key = c.text.casefold()
            if len(matched) < needed or key in seen:
                continue
            seen.add(key)
            length = sum(c.words.values())
            score = sum(
                idf[t] * c.words[t] * (K1 + 1) / (c.words[t] + K1 * (1 - B + B * length / average))
                for t in matched
            )
            scored.append((-score, c.chunk_rank, c.order, c))
        scored.sort(key=lambda entry: entry[:3])
        return [entry[3] for entry in scored[: self._max]]


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…"


def _closed(text: str) -> str:
    # A quoted sentence cut mid-way (or a heading) still reads as one before its marker.
    return text if text[-1] in ".!?…" else text + "."
