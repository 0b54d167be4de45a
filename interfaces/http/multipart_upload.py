"""Read a multipart/form-data upload as it streams in: python-multipart's push parser over
`request.stream()`, the file part piped into the blob store, never held whole.

Not FastAPI's `UploadFile`: Starlette spools every file to a temporary file and only then runs
the route, with no per-file limit and no hash on the way (decision 0023). Here the fields
before the file are read first (small and bounded), the blob key is made from the file's
sanitised name, and the file's bytes go to `BlobStore.put` (on its own thread) as they arrive;
fields after the file are read too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from adapters.content_type import SniffWindow
from application.ports import BlobStore, StoredBlob
from interfaces.http.blob_pipe import ChunkPipe, put_streamed
from interfaces.http.problems import ProblemError

FILE_FIELD = "file"
MAX_FIELDS = 40  # tags are repeated fields: 32 at most, plus name and spare
MAX_FIELD_BYTES = 4096
MAX_HEADER_BYTES = 8192
SEND_BYTES = 256 * 1024  # file data is handed to the store in pieces of about this size


@dataclass
class ReceivedUpload:
    """What an upload stored and said about itself."""

    key: str
    blob: StoredBlob
    filename: str
    claimed_type: str | None
    fields: dict[str, list[str]]
    window: SniffWindow


@dataclass
class _Part:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    name: str = ""
    filename: str | None = None
    data: bytearray = field(default_factory=bytearray)


def _bad(detail: str) -> ProblemError:
    return ProblemError(400, "malformed-upload", "Malformed upload", detail)


def boundary_of(content_type: str | None) -> bytes:
    """The multipart boundary, or a 415 problem for any other body."""
    kind, options = parse_options_header(content_type or "")
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary or len(boundary) > 200:
        raise ProblemError(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            "send the file as multipart/form-data in the field `file`",
        )
    return boundary


class _Reader:
    """Drives the push parser and turns its callbacks into parts, one body chunk at a time."""

    def __init__(self, request: Request, boundary: bytes) -> None:
        self._stream: AsyncIterator[bytes] = request.stream().__aiter__()
        self._events: list[tuple[str, bytes]] = []
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._done = False
        events = self._events

        def data(kind: str) -> Callable[[bytes, int, int], None]:
            return lambda buf, start, end: events.append((kind, buf[start:end]))

        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": lambda: events.append(("begin", b"")),
                "on_header_field": data("field"),
                "on_header_value": data("value"),
                "on_header_end": lambda: events.append(("header_end", b"")),
                "on_headers_finished": lambda: events.append(("headers", b"")),
                "on_part_data": data("data"),
                "on_part_end": lambda: events.append(("end", b"")),
            },
            max_header_size=MAX_HEADER_BYTES,
        )

    async def next_event(self) -> tuple[str, bytes] | None:
        while not self._events:
            if self._done:
                return None
            chunk = await anext(self._stream, None)
            try:
                if chunk is None:
                    self._parser.finalize()
                    self._done = True
                elif chunk:
                    self._parser.write(chunk)
            except MultipartParseError as exc:
                raise _bad(f"the multipart body is malformed: {exc}") from None
        return self._events.pop(0)

    async def next_part_head(self) -> _Part | None:
        """The next part's headers (its data follows), or None at the end of the body."""
        part = _Part()
        name = bytearray()
        value = bytearray()
        while (event := await self.next_event()) is not None:
            kind, payload = event
            if kind == "field":
                name += payload
            elif kind == "value":
                value += payload
            elif kind == "header_end":
                part.headers[bytes(name).lower()] = bytes(value)
                name.clear()
                value.clear()
            elif kind == "headers":
                disposition, options = parse_options_header(
                    part.headers.get(b"content-disposition", b"")
                )
                if disposition != b"form-data" or b"name" not in options:
                    raise _bad("every part needs Content-Disposition: form-data; name=...")
                part.name = options[b"name"].decode("utf-8", "replace")
                raw_filename = options.get(b"filename")
                if raw_filename is not None:
                    part.filename = raw_filename.decode("utf-8", "replace")
                return part
        return None

    async def field_value(self, part: _Part) -> str:
        """A small (non-file) field's whole value."""
        while (event := await self.next_event()) is not None:
            kind, payload = event
            if kind == "data":
                part.data += payload
                if len(part.data) > MAX_FIELD_BYTES:
                    raise _bad(f"field {part.name!r} is over {MAX_FIELD_BYTES} bytes")
            elif kind == "end":
                return part.data.decode("utf-8", "replace")
        raise _bad(f"field {part.name!r} is cut short")

    async def pipe_file(self, pipe: ChunkPipe, window: SniffWindow) -> None:
        """The file part's data into the pipe, in pieces of about SEND_BYTES."""
        pending = bytearray()
        while (event := await self.next_event()) is not None:
            kind, payload = event
            if kind == "data":
                window.feed(payload)
                pending += payload
                if len(pending) >= SEND_BYTES:
                    await pipe.send(bytes(pending))
                    pending.clear()
            elif kind == "end":
                await pipe.send(bytes(pending))
                return
        raise _bad("the file part is cut short")


async def receive_upload(
    request: Request,
    *,
    store: BlobStore,
    key_for: Callable[[str], str],
    max_bytes: int,
) -> ReceivedUpload:
    """Stream the request's `file` part into the store under `key_for(filename)`.

    Raises a problem (400 malformed, 415 not multipart, 422 no file) or the store's error
    (BlobTooLargeError); starlette's ClientDisconnect when the client goes. On any error
    nothing is stored.
    """
    reader = _Reader(request, boundary_of(request.headers.get("content-type")))
    fields: dict[str, list[str]] = {}
    count = 0

    async def read_field(part: _Part) -> None:
        nonlocal count
        count += 1
        if count > MAX_FIELDS:
            raise _bad(f"more than {MAX_FIELDS} fields")
        fields.setdefault(part.name, []).append(await reader.field_value(part))

    while True:
        part = await reader.next_part_head()
        if part is None:
            raise ProblemError(
                422, "validation", "No file", "the upload has no `file` part with a filename"
            )
        if part.name == FILE_FIELD and part.filename is not None:
            break
        await read_field(part)

    file_part = part
    filename = file_part.filename or ""
    content_type = file_part.headers.get(b"content-type")
    claimed = None if content_type is None else content_type.decode("latin-1")[:200]
    key = key_for(filename)
    window = SniffWindow()

    async def produce(pipe: ChunkPipe) -> None:
        await reader.pipe_file(pipe, window)
        # Fields after the file are read before the blob counts as complete.
        while (later := await reader.next_part_head()) is not None:
            if later.name == FILE_FIELD:
                raise _bad("one `file` part per upload")
            await read_field(later)

    blob, _ = await put_streamed(store, key, max_bytes, produce)
    return ReceivedUpload(
        key=key,
        blob=blob,
        filename=filename,
        claimed_type=claimed,
        fields=fields,
        window=window,
    )
