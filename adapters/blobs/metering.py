"""What every blob store does to a source on the way in: count, hash and bound it."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator

from application.ports import BlobTooLargeError, StoredBlob


class MeteredSource:
    """Iterates a source's chunks, hashing and counting them; raises BlobTooLargeError as soon
    as the count passes the limit, before the offending chunk reaches the store."""

    def __init__(self, chunks: Iterable[bytes], max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        self._chunks = chunks
        self._max_bytes = max_bytes
        self._hash = hashlib.sha256()
        self._size = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            if not chunk:
                continue
            self._size += len(chunk)
            if self._size > self._max_bytes:
                raise BlobTooLargeError(self._max_bytes)
            self._hash.update(chunk)
            yield bytes(chunk)

    def result(self) -> StoredBlob:
        """Size and SHA-256 of what has been read (call once the source is exhausted)."""
        return StoredBlob(size=self._size, sha256=self._hash.hexdigest())


def check_range(start: int, end: int | None) -> None:
    """Refuse ranges no caller should build (a bug, not a client's 416)."""
    if start < 0 or (end is not None and end < start):
        raise ValueError(f"bad byte range {start}-{end}")
