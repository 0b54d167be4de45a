"""Blob store on a local directory (DATA_DIR/blobs): one file per key, written atomically."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from adapters.blobs.metering import MeteredSource, check_range
from application.ports import BlobNotFoundError, BlobRangeError, StoredBlob

READ_CHUNK_BYTES = 64 * 1024
_DIR_MODE = 0o700
_FILE_MODE = 0o600


class UnsafeBlobKeyError(ValueError):
    """The key would resolve outside the store's root."""


class LocalBlobStore:
    """Keys are relative paths under `root`; readers never see a half-written file because a
    blob is written to a temporary file beside it and renamed into place."""

    def __init__(self, root: Path) -> None:
        root.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
        self._root = root.resolve()

    def _path(self, key: str) -> Path:
        # Refuse before touching the disk: absolute keys, "..", NUL, and anything a symlink
        # inside the root would redirect elsewhere (resolve follows it).
        parts = key.split("/")
        if (
            not key
            or "\0" in key
            or key.startswith("/")
            or any(p in {"", ".", ".."} for p in parts)
        ):
            raise UnsafeBlobKeyError(key)
        path = (self._root / key).resolve()
        if not path.is_relative_to(self._root) or path == self._root:
            raise UnsafeBlobKeyError(key)
        return path

    def _make_dirs(self, directory: Path) -> None:
        missing: list[Path] = []
        while not directory.exists():
            missing.append(directory)
            directory = directory.parent
        for path in reversed(missing):
            with contextlib.suppress(FileExistsError):  # another writer made it first
                path.mkdir(mode=_DIR_MODE)
            os.chmod(path, _DIR_MODE)  # mkdir's mode is cut by the umask

    def put(self, key: str, chunks: Iterable[bytes], *, max_bytes: int) -> StoredBlob:
        path = self._path(key)
        self._make_dirs(path.parent)
        metered = MeteredSource(chunks, max_bytes)
        # mkstemp creates the file 0600 in the same directory, so the rename is atomic.
        fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=".upload-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in metered:
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temp_name, _FILE_MODE)
            os.replace(temp_name, path)
            temp_name = str(path)  # from here a failure must remove the renamed blob
            _sync_directory(path.parent)  # the rename itself survives a crash
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp_name)
            raise
        return metered.result()

    def open_range(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        check_range(start, end)
        path = self._path(key)
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            raise BlobNotFoundError(key) from None
        size = os.fstat(handle.fileno()).st_size
        if start >= size:
            handle.close()
            raise BlobRangeError(f"{start} is past the end ({size} bytes)")
        last = size - 1 if end is None else min(end, size - 1)
        return _read_span(handle, start, last - start + 1)

    def size(self, key: str) -> int | None:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            return None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()

    def list_keys(self, prefix: str, *, older_than: datetime) -> Iterator[str]:
        """Keys under `prefix` (a directory path ending in '/') modified before `older_than`,
        temporary `.upload-*.part` files of interrupted writes included."""
        base = self._root / prefix
        cutoff = older_than.timestamp()
        for path in base.rglob("*") if base.is_dir() else ():
            with contextlib.suppress(FileNotFoundError):  # deleted while listing
                if path.is_file() and path.stat().st_mtime < cutoff:
                    yield path.relative_to(self._root).as_posix()


def _read_span(handle: BinaryIO, start: int, length: int) -> Iterator[bytes]:
    with handle:
        handle.seek(start)
        while length > 0:
            chunk = handle.read(min(READ_CHUNK_BYTES, length))
            if not chunk:
                return
            length -= len(chunk)
            yield chunk


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
