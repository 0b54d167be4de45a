"""Feed a blocking `BlobStore.put` from async code, one bounded chunk queue between them.

`BlobStore.put` is synchronous (boto3 and file writes block) and pulls its bytes from an
iterator, so it runs in a worker thread reading a `ChunkPipe`, while the request's coroutine
(or a fetch) pushes chunks in. The queue holds at most `depth` chunks: a slow store slows the
reader down instead of piling the upload up in memory. Either side failing stops the other:
an aborted producer makes `put` raise (so it stores nothing), a failed `put` makes the
producer's next `send` raise.
"""

from __future__ import annotations

import functools
import queue
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import anyio

from application.ports import BlobStore, StoredBlob

T = TypeVar("T")
_END = b""  # never sent as data: empty chunks are dropped by `send`
_ABORT = object()
_POLL_SECONDS = 0.1  # how often a blocked side checks that the other is still there


class UploadAbortedError(Exception):
    """The producer stopped before the end (client gone, bad input, crash): store nothing."""


class PipeClosedError(Exception):
    """The consumer (the store's `put`) has stopped: its own error says why."""


class ChunkPipe:
    """A bounded, thread-safe chunk queue with an explicit end or abort."""

    def __init__(self, depth: int = 4) -> None:
        self._queue: queue.Queue[bytes | object] = queue.Queue(maxsize=depth)
        self._consumer_gone = threading.Event()

    def _put(self, item: bytes | object) -> bool:
        while not self._consumer_gone.is_set():
            try:
                self._queue.put(item, timeout=_POLL_SECONDS)
            except queue.Full:
                continue
            return True
        return False

    def send(self, chunk: bytes) -> None:
        """Blocking: call from a thread. PipeClosedError once the consumer has stopped."""
        if chunk and not self._put(chunk):
            raise PipeClosedError

    def finish(self) -> None:
        """Blocking: the data is complete."""
        self._put(_END)

    def abort(self) -> None:
        """Blocking: the data is incomplete; the consumer raises UploadAbortedError."""
        self._put(_ABORT)

    def stop_reading(self) -> None:
        """The consumer is done (whatever `chunks()` was left at): senders stop waiting."""
        self._consumer_gone.set()

    def chunks(self) -> Iterator[bytes]:
        """The consumer's side (one reader)."""
        try:
            while True:
                item = self._queue.get()
                if item is _ABORT:
                    raise UploadAbortedError
                assert isinstance(item, bytes)
                if item == _END:
                    return
                yield item
        finally:
            self._consumer_gone.set()


async def put_streamed(
    store: BlobStore,
    key: str,
    max_bytes: int,
    produce: Callable[[ChunkPipe], Awaitable[T]],
) -> tuple[StoredBlob, T]:
    """Run `store.put(key, ...)` in a worker thread while `produce(pipe)` feeds it.

    On success both results; otherwise the first real cause is raised (the store's error, e.g.
    BlobTooLargeError, before the producer's PipeClosedError) and `put` has stored nothing.
    """
    pipe = ChunkPipe()
    stored: list[StoredBlob] = []
    put_error: list[BaseException] = []

    def consume() -> None:
        try:
            stored.append(store.put(key, pipe.chunks(), max_bytes=max_bytes))
        except BaseException as exc:  # handed to the coroutine below
            put_error.append(exc)
        finally:
            # Not left to the generator's finaliser: the error's traceback keeps it alive.
            pipe.stop_reading()

    async def run_consumer() -> None:
        # Not abandoned on cancel: the coroutine waits until `put` has cleaned up.
        await anyio.to_thread.run_sync(consume)

    produced: list[T] = []
    produce_error: BaseException | None = None
    async with anyio.create_task_group() as group:
        group.start_soon(run_consumer)
        try:
            produced.append(await produce(pipe))
            await anyio.to_thread.run_sync(pipe.finish)
        except BaseException as exc:  # re-raised below, once `put` has stopped
            produce_error = exc
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(pipe.abort)
    if put_error and not isinstance(put_error[0], UploadAbortedError):
        raise put_error[0]
    if produce_error is not None:
        raise produce_error
    if put_error:
        raise put_error[0]
    return stored[0], produced[0]


async def send_off_loop(pipe: ChunkPipe, chunk: bytes) -> None:
    """`pipe.send` without blocking the event loop."""
    await anyio.to_thread.run_sync(functools.partial(pipe.send, chunk))
