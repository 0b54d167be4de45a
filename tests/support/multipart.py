"""Multipart/form-data bodies built by hand, so tests control every byte (raw file names with
path parts or control characters, a chunked body, a body cut short)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

BOUNDARY = "teaim-test-boundary-7d3f"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def file_head(filename: bytes, content_type: str | None = "application/octet-stream") -> bytes:
    """Everything before the file's bytes (the file is the body's only part)."""
    lines = [
        f"--{BOUNDARY}".encode(),
        b'Content-Disposition: form-data; name="file"; filename="' + filename + b'"',
    ]
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}".encode())
    return b"\r\n".join(lines) + b"\r\n\r\n"


def fields_tail(fields: Sequence[tuple[str, str]] = ()) -> bytes:
    """Everything after the file's bytes: more fields, then the closing boundary."""
    out = b"\r\n"
    for name, value in fields:
        out += (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value.encode()
            + b"\r\n"
        )
    return out + f"--{BOUNDARY}--\r\n".encode()


def body(
    filename: bytes,
    data: bytes,
    *,
    content_type: str | None = "application/octet-stream",
    fields: Sequence[tuple[str, str]] = (),
) -> bytes:
    return file_head(filename, content_type) + data + fields_tail(fields)


def streamed(filename: bytes, size: int, piece: int = 1024 * 1024) -> Iterator[bytes]:
    """A body whose file is `size` bytes of a repeating pattern, made piece by piece (never
    whole in memory on the client side either)."""
    yield file_head(filename)
    pattern = bytes(range(256)) * (piece // 256)
    left = size
    while left > 0:
        chunk = pattern[: min(piece, left)]
        left -= len(chunk)
        yield chunk
    yield fields_tail()


def pattern_sha256(size: int, piece: int = 1024 * 1024) -> str:
    """The SHA-256 of what `streamed(..., size, piece)` sends as the file."""
    import hashlib

    digest = hashlib.sha256()
    pattern = bytes(range(256)) * (piece // 256)
    left = size
    while left > 0:
        chunk = pattern[: min(piece, left)]
        left -= len(chunk)
        digest.update(chunk)
    return digest.hexdigest()
