"""The pipe between a request's coroutine and the blocking `BlobStore.put`: either side's
failure stops the other, and nothing is stored unless the producer finished."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from adapters.blobs.local import LocalBlobStore
from application.ports import BlobTooLargeError
from interfaces.http.blob_pipe import ChunkPipe, put_streamed

KEY = "org/o/project/p/blob"


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_what_the_producer_sends_is_stored(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)

    async def produce(pipe: ChunkPipe) -> str:
        for n in range(50):
            await pipe.send(bytes([n]) * 1000)
        return "done"

    blob, result = anyio.run(put_streamed, store, KEY, 10**6, produce)
    assert (blob.size, result) == (50_000, "done")
    assert (tmp_path / KEY).stat().st_size == 50_000


def test_a_producer_that_fails_leaves_nothing(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)

    async def produce(pipe: ChunkPipe) -> None:
        await pipe.send(b"x" * 1000)
        raise ConnectionResetError("client gone")

    with pytest.raises(ConnectionResetError):
        anyio.run(put_streamed, store, KEY, 10**6, produce)
    assert _files(tmp_path) == []


def test_a_store_that_refuses_stops_the_producer(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    sent: list[int] = []

    async def produce(pipe: ChunkPipe) -> None:
        for n in range(10_000):  # far past the limit: must stop early
            await pipe.send(b"y" * 1000)
            sent.append(n)

    with pytest.raises(BlobTooLargeError):
        anyio.run(put_streamed, store, KEY, 5_000, produce)
    assert _files(tmp_path) == []
    assert len(sent) < 20  # the bounded queue plus the refused chunk, not the whole source
