"""Retrieval over a project's documents and memories: search, ask, and the public marketplace.

A service over ports, not a command module: it writes nothing of its own, so it needs no event
store, only the application's guards (the same recorded refusals as every other read), the
query embedder, the chunk index and the answerer. Who may do what:

- search and ask: members holding `read` in the project (an outsider gets the recorded 404 a
  missing project gets);
- search `as_of` an earlier moment is an audit read, not a member read: it can bring back text
  that was deleted or superseded since (a document withdrawn because it should never have
  been uploaded), so it needs `audit` in the project (owners, admins, pms) or the org's
  `auditor` capability, whose every read is recorded (`audit.read`, kind `as_of`);
- the marketplace: any authenticated user of any org, over published documents only.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol
from uuid import UUID

from application.context import CommandContext
from application.ingestion_ports import Answer, Answerer, ChunkHit, ChunkSearch, Embedder
from domain.errors import InvalidValueError
from domain.project import Project
from domain.roles import Permission
from domain.text import check_line, check_text

log = logging.getLogger("teaim.retrieval")

# Bounds on what one request may make the service embed, rank and read back.
MAX_QUERY_CHARS = 500
MAX_QUESTION_CHARS = 2_000
MIN_K = 1
MAX_K = 50
DEFAULT_K = 10
DEFAULT_ASK_K = 8
# The largest log position (PostgreSQL bigint, and an I-JSON integer).
MAX_POSITION = 2**53 - 1
# The action named by the guard (and, for an org auditor, the recorded read's kind `as_of`).
AS_OF_ACTION = "rag.as_of"
_POSITION = re.compile(r"^[0-9]{1,16}$")


class AnswerUnavailableError(Exception):
    """The answerer could not answer now (a chat endpoint down, slow or answering garbage)."""


class IndexUnavailableError(Exception):
    """The embedder or the chunk index cannot serve now (not configured, or failing)."""


class RetrievalGuard(Protocol):
    """The application's guards (the Teaim application implements them)."""

    def get_project(self, *, ctx: CommandContext, project_id: UUID) -> Project:
        """The project, if the caller holds `read` in it (else a recorded 404 or 403)."""
        ...

    def authorize_project_history(
        self,
        *,
        ctx: CommandContext,
        project_id: UUID,
        action: str,
        permission: Permission = Permission.AUDIT,
    ) -> None:
        """An org auditor (the read recorded), or a member holding `permission`."""
        ...


class LogPositions(Protocol):
    """Turns a moment into a position of the log."""

    def position_at(self, org_id: UUID, project_id: UUID, at: datetime) -> int:
        """The position of the project's last event stamped at or before `at` (0: none)."""
        ...


@dataclass(frozen=True, slots=True)
class AsOf:
    """A point of the log to search as of: a position, or a moment (turned into one)."""

    position: int | None = None
    at: datetime | None = None

    def __post_init__(self) -> None:
        if (self.position is None) == (self.at is None):
            raise InvalidValueError("as_of is a position or a moment, not both")
        if self.position is not None and not 0 <= self.position <= MAX_POSITION:
            raise InvalidValueError("as_of position is out of range")
        if self.at is not None and self.at.utcoffset() is None:
            raise InvalidValueError("as_of must carry a UTC offset (e.g. 2030-01-07T09:00Z)")


def parse_as_of(text: str) -> AsOf:
    """`as_of` as a client writes it: a log position (digits) or an ISO 8601 instant with
    its offset (`Z` or `+hh:mm`); anything else is an InvalidValueError."""
    text = text.strip()
    if _POSITION.fullmatch(text):
        return AsOf(position=int(text))
    if not 10 <= len(text) <= 40:
        raise InvalidValueError("as_of is a log position or an ISO 8601 instant")
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidValueError("as_of is a log position or an ISO 8601 instant") from None
    return AsOf(at=at)


@dataclass(frozen=True, slots=True)
class SearchResult:
    """The hits of one search, and the log position they were retrieved as of (if any)."""

    hits: list[ChunkHit]
    as_of_position: int | None = None


@dataclass(frozen=True, slots=True)
class AskResult:
    """An answer and the chunks it was built from."""

    answer: Answer
    hits: list[ChunkHit]


def check_k(k: int) -> int:
    """How many chunks one request may ask for."""
    if not MIN_K <= k <= MAX_K:
        raise InvalidValueError(f"k must be between {MIN_K} and {MAX_K}", k=k)
    return k


def check_query(q: str, *, limit: int = MAX_QUERY_CHARS, what: str = "q") -> str:
    """A search text: not blank, bounded, no control characters but line breaks and tabs."""
    q = q.strip()
    if not q:
        raise InvalidValueError(f"{what} must not be blank")
    if len(q) > limit:
        raise InvalidValueError(f"{what} is over {limit} characters")
    return check_text(q, what=what)


class Retrieval:
    """Search and ask inside one project, and search the public marketplace."""

    def __init__(
        self,
        *,
        guard: RetrievalGuard,
        embedder: Embedder,
        chunks: ChunkSearch,
        answerer: Answerer,
        positions: LogPositions,
    ) -> None:
        self._guard = guard
        self._embedder = embedder
        self._chunks = chunks
        self._answerer = answerer
        self._positions = positions

    def search(
        self,
        *,
        ctx: CommandContext,
        project_id: UUID,
        q: str,
        k: int = DEFAULT_K,
        as_of: AsOf | None = None,
    ) -> SearchResult:
        """The project's best `k` chunks for `q` (as retrievable at `as_of` when given)."""
        q = check_query(q)
        check_k(k)
        org_id = ctx.principal.org_id
        position: int | None = None
        if as_of is None:
            self._guard.get_project(ctx=ctx, project_id=project_id)
        else:
            self._guard.authorize_project_history(
                ctx=ctx, project_id=project_id, action=AS_OF_ACTION, permission=Permission.AUDIT
            )
            position = as_of.position
            if as_of.at is not None:
                position = self._positions.position_at(org_id, project_id, as_of.at)
        hits = self._chunks.search(
            org_id=org_id,
            project_id=project_id,
            query_text=q,
            query_vector=self._embed(q),
            k=k,
            as_of_position=position,
        )
        return SearchResult(hits=_in_project(hits, org_id, project_id, k), as_of_position=position)

    def ask(
        self, *, ctx: CommandContext, project_id: UUID, question: str, k: int = DEFAULT_ASK_K
    ) -> AskResult:
        """An answer built only from the project's best `k` chunks for the question."""
        question = check_query(question, limit=MAX_QUESTION_CHARS, what="question")
        check_k(k)
        self._guard.get_project(ctx=ctx, project_id=project_id)
        org_id = ctx.principal.org_id
        hits = _in_project(
            self._chunks.search(
                org_id=org_id,
                project_id=project_id,
                query_text=question,
                query_vector=self._embed(question),
                k=k,
            ),
            org_id,
            project_id,
            k,
        )
        answer = self._answerer.answer(question, hits)
        return AskResult(answer=_cited_from(answer, hits), hits=hits)

    def marketplace_search(
        self, *, ctx: CommandContext, q: str, k: int = DEFAULT_K
    ) -> list[ChunkHit]:
        """The best `k` chunks of published documents, whoever published them.

        Any authenticated principal may search; `ctx` is taken so the call has a caller.
        """
        del ctx  # every authenticated caller may search the marketplace
        q = check_line(check_query(q), what="q")
        check_k(k)
        return self._chunks.search_public(query_text=q, query_vector=self._embed(q), k=k)[:k]

    def _embed(self, text: str) -> list[float]:
        (vector,) = self._embedder.embed([text])
        return vector


def _in_project(hits: Sequence[ChunkHit], org_id: UUID, project_id: UUID, k: int) -> list[ChunkHit]:
    """The hits of that project only, at most `k`.

    The index filters by org and project before ranking; this is the second lock on the same
    door: a chunk of another tenant must never reach a response, even through an index bug.
    """
    kept = [h for h in hits if h.org_id == org_id and h.project_id == project_id]
    if len(kept) != len(hits):
        log.error(
            "chunk index returned %d chunks outside org %s project %s; dropped",
            len(hits) - len(kept),
            org_id,
            project_id,
        )
    return kept[:k]


def _cited_from(answer: Answer, hits: Sequence[ChunkHit]) -> Answer:
    """The answer with only citations of the chunks it was given (an answerer cannot cite
    anything else, however it was built)."""
    sources = {(h.source_kind, h.source_id) for h in hits}
    citations = [c for c in answer.citations if (c.source_kind, c.source_id) in sources]
    if len(citations) == len(answer.citations):
        return answer
    return replace(answer, citations=citations)


SNIPPET_CHARS = 240
_WORD = re.compile(r"\w+", re.UNICODE)


def snippet(text: str, query: str, *, width: int = SNIPPET_CHARS) -> str:
    """A bounded excerpt of `text` around the first word it shares with `query`.

    At most `width` characters of the text (plus an ellipsis at a cut end), starting a little
    before the match, cut at spaces; the text's start when no query word occurs in it.
    """
    words = {w for w in _WORD.findall(query.lower()) if len(w) > 1}
    at = 0
    for match in _WORD.finditer(text):
        if match.group().lower() in words:
            at = match.start()
            break
    start = max(0, at - width // 4)
    if start > 0:
        space = text.find(" ", start)
        start = space + 1 if 0 <= space < at else start
    end = min(len(text), start + width)
    if end < len(text):
        space = text.rfind(" ", start, end)
        end = space if space > start + width // 2 else end
    excerpt = text[start:end].strip()
    return ("…" if start > 0 else "") + excerpt + ("…" if end < len(text) else "")
