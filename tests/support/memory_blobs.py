"""An in-memory `BlobStore` for unit tests of pure logic (the real stores have their own
contract test against files and S3)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator

from application.ports import BlobNotFoundError, BlobRangeError, BlobTooLargeError, StoredBlob


class MemoryBlobs:
    """The BlobStore port over a dict; reads come back in 7-byte chunks, so callers that
    assume one chunk per blob are caught."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def put(self, key: str, chunks: Iterable[bytes], *, max_bytes: int) -> StoredBlob:
        data = b"".join(chunks)
        if len(data) > max_bytes:
            raise BlobTooLargeError(max_bytes)
        self.blobs[key] = data
        return StoredBlob(size=len(data), sha256=hashlib.sha256(data).hexdigest())

    def open_range(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        if key not in self.blobs:
            raise BlobNotFoundError(key)
        if start and start >= len(self.blobs[key]):
            raise BlobRangeError(key)
        data = self.blobs[key][start : None if end is None else end + 1]
        return iter([data[i : i + 7] for i in range(0, len(data), 7)])

    def size(self, key: str) -> int | None:
        return len(self.blobs[key]) if key in self.blobs else None

    def exists(self, key: str) -> bool:
        return key in self.blobs

    def delete(self, key: str) -> None:
        self.blobs.pop(key, None)
