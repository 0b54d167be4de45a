"""Retrieval routes of a project: hybrid search (optionally as of an earlier log position or
moment) and questions answered from the project's own chunks, with citations.

Each route checks its input, then authorises through the application's guards (members with
`read`; `as_of` needs `audit` or the org's auditor capability, recorded), then embeds, ranks
and answers. An index or answerer that cannot serve is a 503 with Retry-After, never a 500.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from application.retrieval import (
    DEFAULT_K,
    MAX_K,
    MAX_QUERY_CHARS,
    MIN_K,
    AnswerUnavailableError,
    AsOf,
    IndexUnavailableError,
    Retrieval,
    parse_as_of,
)
from interfaces.http.consistency import (
    MinPositionQuery,
    await_read_models,
    caught_up,
    min_position_of,
)
from interfaces.http.deps import CtxDep, ReaderDep
from interfaces.http.models.rag import AskIn, AskOut, SearchOut, ask_out, chunk_out
from interfaces.http.problems import ProblemError, error_responses
from interfaces.retrieval import INDEX_READ_MODELS, build_retrieval

# Seconds a client is told to wait when the index or the answerer cannot serve.
RETRY_AFTER = "5"
# Two first requests at once build the service once (it may hold an HTTP client to close).
_BUILD = threading.Lock()

router = APIRouter(
    prefix="/api/projects/{project_id}/rag",
    tags=["retrieval"],
    responses=error_responses(401, 403, 404, 422, 503),
)

IndexAt = Annotated[int | None, Depends(caught_up(INDEX_READ_MODELS))]
QueryText = Annotated[
    str,
    Query(min_length=1, max_length=MAX_QUERY_CHARS, description="What to search for."),
]
KQuery = Annotated[int, Query(ge=MIN_K, le=MAX_K, description="How many chunks to return.")]
AsOfQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=40,
        description=(
            "Search what was retrievable then: a log position (digits) or an ISO 8601 instant"
            " with its offset (the position of the project's last event at or before it)."
            " An audit read: `audit` in the project, or the org's auditor capability (recorded)."
        ),
    ),
]


async def _searched_as_of(
    request: Request,
    reader: ReaderDep,
    min_position: MinPositionQuery = None,
    as_of: AsOfQuery = None,
) -> AsOf | None:
    """`as_of` parsed (a 422 before anything else), once the index applied both it (when a
    position) and `min_position`: a position no event has yet is a 422, like `min_position`,
    and a position the index has not reached is waited for, never answered half-built."""
    moment = None if as_of is None else parse_as_of(as_of)
    position = min_position_of(request, min_position)
    if moment is not None and moment.position is not None:
        position = max(position or 0, moment.position)
    if not reader.refused_if_halted_from_cache(INDEX_READ_MODELS):
        await run_in_threadpool(reader.refuse_if_halted, INDEX_READ_MODELS)
    await await_read_models(request, INDEX_READ_MODELS, position)
    return moment


SearchedAsOf = Annotated[AsOf | None, Depends(_searched_as_of)]


def retrieval_of(request: Request) -> Retrieval:
    """The app's retrieval service (built on first use from the runtime)."""
    state = request.app.state
    retrieval: Retrieval | None = getattr(state, "retrieval", None)
    if retrieval is None:
        with _BUILD:
            retrieval = getattr(state, "retrieval", None)
            if retrieval is None:
                retrieval = state.retrieval = build_retrieval(state.runtime)
    return retrieval


@contextmanager
def serving() -> Iterator[None]:
    """An index or answerer that cannot serve now, as a 503 problem (the cause is logged by
    the component; the client learns only that it should retry)."""
    try:
        yield
    except IndexUnavailableError:
        raise ProblemError(
            503,
            "index-unavailable",
            "Search index unavailable",
            "the document index cannot serve right now; retry",
            headers={"Retry-After": RETRY_AFTER},
        ) from None
    except AnswerUnavailableError:
        raise ProblemError(
            503,
            "answerer-unavailable",
            "Answerer unavailable",
            "the answerer cannot answer right now; retry",
            headers={"Retry-After": RETRY_AFTER},
        ) from None


@router.get("/search")
def search_project(
    project_id: UUID,
    request: Request,
    ctx: CtxDep,
    q: QueryText,
    moment: SearchedAsOf,
    k: KQuery = DEFAULT_K,
) -> SearchOut:
    """The project's best `k` chunks for `q` (documents and memories), by hybrid ranking."""
    with serving():
        result = retrieval_of(request).search(
            ctx=ctx, project_id=project_id, q=q, k=k, as_of=moment
        )
    return SearchOut(
        items=[chunk_out(hit, q) for hit in result.hits], as_of_position=result.as_of_position
    )


@router.post("/ask")
def ask_project(
    project_id: UUID, body: AskIn, request: Request, ctx: CtxDep, _position: IndexAt
) -> AskOut:
    """An answer to the question built only from this project's chunks, with citations.

    A read: it records nothing, and `read` in the project suffices.
    """
    with serving():
        result = retrieval_of(request).ask(
            ctx=ctx, project_id=project_id, question=body.question, k=body.k
        )
    return ask_out(result.answer)
