"""Document uploads (multipart, streamed), fetches from a URL, and downloads with ranges.

The bytes go to the blob store first and the event after; whatever fails in between (too
large, a polyglot, a refused fetch, the client gone, the command refused) deletes the blob,
so a failed upload leaves neither a blob nor an event (decision 0023).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterator
from typing import Annotated, Any
from urllib.parse import unquote, urlsplit
from uuid import UUID, uuid4

import anyio
import anyio.from_thread
import anyio.lowlevel
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from adapters.content_type import PolyglotError, SniffWindow, sniff
from adapters.fetch.address_policy import FetchRefused
from adapters.fetch.safe_fetch import FetchLimits, FetchResult, safe_fetch
from application.documents import OnDuplicate, UploadOutcome
from application.ports import BlobNotFoundError, BlobRangeError, BlobStore, BlobTooLargeError
from domain.artifact import Content, ContentSource, IngestionState
from domain.blob_keys import blob_key
from domain.errors import NotFoundError
from interfaces.http.blob_pipe import ChunkPipe, in_own_thread, put_streamed
from interfaces.http.byte_ranges import (
    RangeNotSatisfiableError,
    attachment,
    etag_matches,
    wanted_range,
)
from interfaces.http.deps import CtxDep, RuntimeDep
from interfaces.http.models.artifacts import FromUrlIn, UploadOut
from interfaces.http.models.problem import ProblemOut
from interfaces.http.multipart_upload import receive_upload
from interfaces.http.problems import ProblemError, error_responses
from interfaces.http.upload_slots import UploadSlots, upload_slots
from interfaces.runtime import Runtime

router = APIRouter(prefix="/api/projects/{project_id}", tags=["documents"])

# What a URL fetch may bring back: the types ingestion reads (`text/*` covers html, csv, vtt).
FETCH_TYPES = frozenset(
    {
        "application/pdf",
        "image/png",
        "image/jpeg",
        "image/tiff",
        "image/webp",
        "text/*",
        "application/x-subrip",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    }
)


def _problem(status: int, meaning: str) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ProblemOut, "description": meaning}}


_TOO_LARGE = _problem(413, "The file is larger than `BLOB_MAX_BYTES` (nothing is stored).")
_UNSUPPORTED = _problem(
    415, "Not multipart/form-data, or a polyglot file (valid as two formats; refused)."
)
_DUPLICATE: dict[int | str, dict[str, Any]] = {
    200: {"model": UploadOut, "description": "The project already has these bytes."}
}
_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "name": {"type": "string", "maxLength": 200},
                        "tags": {"type": "array", "items": {"type": "string", "maxLength": 48}},
                    },
                }
            }
        },
    }
}
DuplicateQuery = Annotated[
    OnDuplicate,
    Query(description="Bytes the project already has: answer that document, or a new version."),
]


async def _discard(store: BlobStore, key: str) -> None:
    """Delete a blob no event names (shielded: it runs while a failure propagates)."""
    with anyio.CancelScope(shield=True):
        await anyio.to_thread.run_sync(store.delete, key)


def _slots(request: Request, runtime: Runtime) -> UploadSlots:
    settings = runtime.settings
    return upload_slots(
        request,
        max_total=settings.uploads_max_concurrent,
        max_per_org=settings.uploads_max_per_org,
    )


def _too_large(max_bytes: int) -> ProblemError:
    return ProblemError(
        413, "content-too-large", "Content too large", f"the file is larger than {max_bytes} bytes"
    )


def _tags(values: list[str]) -> list[str]:
    return [tag.strip() for value in values for tag in value.split(",") if tag.strip()]


async def _record(
    runtime: Runtime,
    ctx: CtxDep,
    project_id: UUID,
    *,
    key: str,
    name: str,
    tags: list[str],
    window: SniffWindow,
    size: int,
    sha256: str,
    claimed: str | None,
    source: ContentSource,
    source_url: str | None,
    on_duplicate: OnDuplicate,
    response: Response,
) -> UploadOut:
    """Sniff, then record the stored blob; delete it when it ends up named by no event."""
    try:
        try:
            sniffed = sniff(bytes(window.head), window.tail, name=name, claimed=claimed)
        except PolyglotError as exc:
            raise ProblemError(
                415, "polyglot-file", "Polyglot file refused", str(exc), reason=exc.code
            ) from None
        content = Content(
            blob_key=key,
            mime=sniffed.mime,
            claimed_mime=sniffed.claimed_mime,
            size=size,
            sha256=sha256,
            source=source,
            source_url=source_url,
        )
        outcome: UploadOutcome = await run_in_threadpool(
            functools.partial(
                runtime.app.record_upload,
                ctx=ctx,
                project_id=project_id,
                name=name,
                tags=tags,
                content=content,
                on_duplicate=on_duplicate,
            )
        )
    except BaseException:
        await _discard(runtime.blobs, key)
        raise
    if not outcome.stored:
        await _discard(runtime.blobs, key)
    if outcome.duplicate:
        response.status_code = 200
        response.headers["Artifact-Duplicate"] = on_duplicate.value
    else:
        response.headers["Location"] = f"/api/projects/{project_id}/artifacts/{outcome.id}"
    return UploadOut(
        id=outcome.id,
        position=outcome.position,
        content_version=outcome.content_version,
        duplicate=outcome.duplicate,
        name=outcome.name,
        mime=sniffed.mime,
        claimed_mime=sniffed.claimed_mime,
        mime_mismatch=sniffed.mismatch,
        size=size,
        sha256=sha256,
    )


@router.post(
    "/artifacts",
    status_code=201,
    responses={
        **_DUPLICATE,
        **error_responses(401, 403, 404, 409, 422, 429, 503),
        **_problem(400, "The multipart body is malformed (or the client went away)."),
        **_TOO_LARGE,
        **_UNSUPPORTED,
    },
    openapi_extra=_UPLOAD_BODY,
)
async def upload_artifact(
    project_id: UUID,
    request: Request,
    response: Response,
    runtime: RuntimeDep,
    ctx: CtxDep,
    on_duplicate: DuplicateQuery = OnDuplicate.EXISTING,
) -> UploadOut:
    """Upload a document: multipart/form-data with the file in `file` (plus optional `name`
    and repeated `tags`), streamed to the blob store. Its type is sniffed from the bytes.
    The same bytes again answer the existing document (200, `Artifact-Duplicate`)."""
    await run_in_threadpool(
        functools.partial(runtime.app.check_upload, ctx=ctx, project_id=project_id)
    )
    org_id = ctx.principal.org_id
    with _slots(request, runtime).hold(org_id):
        return await _upload(project_id, request, response, runtime, ctx, on_duplicate)


async def _upload(
    project_id: UUID,
    request: Request,
    response: Response,
    runtime: Runtime,
    ctx: CtxDep,
    on_duplicate: OnDuplicate,
) -> UploadOut:
    org_id = ctx.principal.org_id
    max_bytes = runtime.settings.blob_max_bytes
    try:
        received = await receive_upload(
            request,
            store=runtime.blobs,
            key_for=lambda filename: blob_key(org_id, project_id, uuid4(), filename),
            max_bytes=max_bytes,
        )
    except BlobTooLargeError:
        raise _too_large(max_bytes) from None
    except ClientDisconnect:
        raise ProblemError(
            400, "client-disconnected", "Client disconnected", "the upload was cut short"
        ) from None
    names = received.fields.get("name") or [received.filename]
    return await _record(
        runtime,
        ctx,
        project_id,
        key=received.key,
        name=names[-1] or received.filename,
        tags=_tags(received.fields.get("tags", [])),
        window=received.window,
        size=received.blob.size,
        sha256=received.blob.sha256,
        claimed=received.claimed_type,
        source=ContentSource.UPLOAD,
        source_url=None,
        on_duplicate=on_duplicate,
        response=response,
    )


def _name_from_url(url: str) -> str:
    try:
        path = urlsplit(url).path
    except ValueError:
        return "download"
    return unquote(path.rstrip("/").rsplit("/", 1)[-1]) or "download"


@router.post(
    "/artifacts/from-url",
    status_code=201,
    responses={
        **_DUPLICATE,
        **error_responses(401, 403, 404, 409, 422, 429, 503),
        **_TOO_LARGE,
        **_UNSUPPORTED,
    },
)
async def upload_from_url(
    project_id: UUID,
    body: FromUrlIn,
    request: Request,
    response: Response,
    runtime: RuntimeDep,
    ctx: CtxDep,
    on_duplicate: DuplicateQuery = OnDuplicate.EXISTING,
) -> UploadOut:
    """Fetch a public URL as a document (http/https; private, loopback and metadata addresses,
    redirects to them, other types and oversize bodies are refused with a reason code)."""
    await run_in_threadpool(
        functools.partial(runtime.app.check_upload, ctx=ctx, project_id=project_id)
    )
    with _slots(request, runtime).hold(ctx.principal.org_id):
        return await _from_url(project_id, body, response, runtime, ctx, on_duplicate)


async def _from_url(
    project_id: UUID,
    body: FromUrlIn,
    response: Response,
    runtime: Runtime,
    ctx: CtxDep,
    on_duplicate: OnDuplicate,
) -> UploadOut:
    setup = runtime.url_fetch
    max_bytes = runtime.settings.blob_max_bytes
    name = body.name or _name_from_url(body.url)
    key = blob_key(ctx.principal.org_id, project_id, uuid4(), name)
    window = SniffWindow()
    limits = FetchLimits(
        max_bytes=max_bytes, total_seconds=setup.total_seconds, allowed_ports=setup.allowed_ports
    )

    async def produce(pipe: ChunkPipe) -> FetchResult:
        loop = anyio.lowlevel.current_token()

        def sink(chunk: bytes) -> None:
            window.feed(chunk)
            # Waits (this thread only) until the writer has room for the chunk.
            anyio.from_thread.run(pipe.send, chunk, token=loop)

        def fetch() -> FetchResult:
            # Its own loop on its own thread (no shared worker-thread slot, decision 0023), so
            # the sink may wait for a slow store.
            return asyncio.run(
                safe_fetch(
                    body.url,
                    allowed_content_types=FETCH_TYPES,
                    limits=limits,
                    policy=setup.policy,
                    resolve=setup.resolve,
                    sink=sink,
                    tls=setup.tls,
                )
            )

        return await in_own_thread(fetch)

    try:
        blob, fetched = await put_streamed(runtime.blobs, key, max_bytes, produce)
    except BlobTooLargeError:
        raise _too_large(max_bytes) from None
    except FetchRefused as exc:
        # The reason code only: the detail may hold the address the name resolved to.
        raise ProblemError(
            422,
            "fetch-refused",
            "URL refused",
            f"the URL cannot be fetched: {exc.reason.value}",
            reason=exc.reason.value,
        ) from None
    return await _record(
        runtime,
        ctx,
        project_id,
        key=key,
        name=name,
        tags=list(body.tags),
        window=window,
        size=blob.size,
        sha256=blob.sha256,
        claimed=fetched.content_type,
        source=ContentSource.URL,
        source_url=body.url,
        on_duplicate=on_duplicate,
        response=response,
    )


_DOWNLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The file.", "content": {"application/octet-stream": {}}},
    206: {"description": "One byte range of the file (`Content-Range`)."},
    304: {"description": "Not modified (`If-None-Match` names the ETag)."},
    **error_responses(401, 403, 404, 422, 429),
    **_problem(416, "The byte range starts past the end of the file."),
}


@router.get(
    "/artifacts/{artifact_id}/content", response_class=Response, responses=_DOWNLOAD_RESPONSES
)
def download_artifact(
    project_id: UUID, artifact_id: UUID, request: Request, runtime: RuntimeDep, ctx: CtxDep
) -> Response:
    """The document's current bytes: ETag (its SHA-256), If-None-Match, one byte Range;
    always `attachment`, `nosniff`. HEAD answers the same headers without the bytes."""
    return _download(project_id, artifact_id, request, runtime, ctx)


@router.head("/artifacts/{artifact_id}/content", include_in_schema=False)
def download_artifact_head(
    project_id: UUID, artifact_id: UUID, request: Request, runtime: RuntimeDep, ctx: CtxDep
) -> Response:
    """The download's headers only."""
    return _download(project_id, artifact_id, request, runtime, ctx)


def _download(
    project_id: UUID, artifact_id: UUID, request: Request, runtime: Runtime, ctx: CtxDep
) -> Response:
    artifact = runtime.app.get_artifact(ctx=ctx, project_id=project_id, artifact_id=artifact_id)
    if artifact.deleted or artifact.ingestion == IngestionState.NO_CONTENT:
        raise NotFoundError("the artifact has no content", artifact_id=artifact_id)
    etag = f'"{artifact.sha256}"'
    headers = {
        "ETag": etag,
        "Accept-Ranges": "bytes",
        "Content-Disposition": attachment(artifact.name),
        "X-Content-Type-Options": "nosniff",
        # Opened directly in a browser, an uploaded page still cannot run script.
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, no-cache",
    }
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    size = artifact.size
    range_header = request.headers.get("range")
    if_range = request.headers.get("if-range")
    if if_range is not None and not etag_matches(if_range, etag):
        range_header = None  # the client's copy is stale: send it all
    try:
        span = wanted_range(range_header, size)
    except RangeNotSatisfiableError:
        raise ProblemError(
            416,
            "range-not-satisfiable",
            "Range not satisfiable",
            f"the file has {size} bytes",
            headers={"Content-Range": f"bytes */{size}"},
        ) from None
    status = 200
    first, last = 0, size - 1
    if span is not None:
        status = 206
        first, last = span
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    headers["Content-Length"] = str(max(0, last - first + 1))
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=artifact.mime)
    return StreamingResponse(
        _chunks(runtime.blobs, artifact.blob_key, first, last, size),
        status_code=status,
        headers=headers,
        media_type=artifact.mime,
    )


def _chunks(store: BlobStore, key: str, first: int, last: int, size: int) -> Iterator[bytes]:
    if size == 0:
        return iter(())
    try:
        return store.open_range(key, first, last)
    except (BlobNotFoundError, BlobRangeError):
        raise NotFoundError("the artifact's content is missing") from None
