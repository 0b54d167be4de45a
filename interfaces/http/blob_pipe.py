"""Feed a blocking `BlobStore.put` from async code, one bounded chunk queue between them.

`BlobStore.put` is synchronous (boto3 and file writes block) and pulls its bytes from an
iterator, so it runs on a thread of its own reading a `ChunkPipe`, while the request's
coroutine (or a fetch) pushes chunks in. The queue holds at most `depth` chunks: a slow store
slows the producer down instead of piling the upload up in memory. Either side failing stops
the other: an aborted producer makes `put` raise (so it stores nothing), a failed `put` makes
the producer's next `send` raise.

Why not anyio's worker threads (decision 0023): they share one limiter (40) with every sync
route, and a writer holds its thread for the upload's whole length. Had feeding it needed a
second worker thread too, 40 uploads would take every slot and wait for each other forever.
So the writer has its own thread, the producer feeds it from the event loop without any
thread, and the coroutine awaits the writer's end through an event; the number of writer
threads is bounded by the upload caps (`upload_slots`).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import anyio
import anyio.from_thread
import anyio.lowlevel

from application.ports import BlobStore, StoredBlob

T = TypeVar("T")
_END = b""  # never sent as data: empty chunks are dropped by `send`


class UploadAbortedError(Exception):
    """The producer stopped before the end (client gone, bad input, crash): store nothing."""


class PipeClosedError(Exception):
    """The consumer (the store's `put`) has stopped: its own error says why."""


class ChunkPipe:
    """A bounded chunk queue from the event loop (the producer) to one reader thread.

    Made inside the event loop. The producer's side (`send`, `finish`, `abort`) runs on the
    loop and never blocks a thread: a full queue waits for an event the reader sets (via the
    loop) each time it takes a chunk or stops.
    """

    def __init__(self, depth: int = 4) -> None:
        self._queue: queue.Queue[bytes] = queue.Queue(maxsize=depth)
        self._consumer_gone = threading.Event()
        self._aborted = threading.Event()
        self._token = anyio.lowlevel.current_token()
        self._loop_thread = threading.get_ident()
        self._room = anyio.Event()

    def _wake(self) -> None:
        self._room.set()  # on the loop: the only place `_room` is read or replaced

    def _notify(self) -> None:
        """From the reader thread: there is room now, or no reader any more."""
        if threading.get_ident() == self._loop_thread:
            self._wake()  # e.g. the generator finalised by the garbage collector on the loop
            return
        with contextlib.suppress(anyio.RunFinishedError):  # the loop gone: no producer
            anyio.from_thread.run_sync(self._wake, token=self._token)

    async def _offer(self, item: bytes) -> bool:
        while not self._consumer_gone.is_set():
            try:
                self._queue.put_nowait(item)
            except queue.Full:
                # No await between the failed put and this: a chunk the reader takes from
                # now on is followed by a `_wake` that finds the new event.
                self._room = anyio.Event()
                await self._room.wait()
                continue
            return True
        return False

    async def send(self, chunk: bytes) -> None:
        """PipeClosedError once the consumer has stopped."""
        if chunk and not await self._offer(chunk):
            raise PipeClosedError

    async def finish(self) -> None:
        """The data is complete."""
        await self._offer(_END)

    def abort(self) -> None:
        """The data is incomplete; the consumer raises UploadAbortedError. Never waits."""
        self._aborted.set()
        # Wakes a reader waiting on an empty queue; a full one means the reader is not
        # waiting and sees the flag at its next chunk.
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(_END)

    def stop_reading(self) -> None:
        """The consumer is done (whatever `chunks()` was left at): senders stop waiting."""
        if not self._consumer_gone.is_set():
            self._consumer_gone.set()
            self._notify()

    def chunks(self) -> Iterator[bytes]:
        """The consumer's side (one reader, on its own thread)."""
        try:
            while True:
                item = self._queue.get()
                if self._aborted.is_set():
                    raise UploadAbortedError
                if item == _END:
                    return
                self._notify()
                yield item
        finally:
            self.stop_reading()


async def in_own_thread(fn: Callable[[], T]) -> T:
    """`fn()` on a new thread, awaited through an event (no shared worker-thread slot).

    Not abandoned on cancel: the caller waits until `fn` has returned, so whatever it holds
    is cleaned up before the caller moves on (the caller makes `fn` end, e.g. by aborting).
    """
    token = anyio.lowlevel.current_token()
    finished = anyio.Event()
    outcome: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(fn())
        except BaseException as exc:  # handed to the coroutine below
            failure.append(exc)
        finally:
            # The loop gone means no one is waiting.
            with contextlib.suppress(anyio.RunFinishedError):
                anyio.from_thread.run_sync(finished.set, token=token)

    threading.Thread(target=run, name="blob-writer", daemon=True).start()
    with anyio.CancelScope(shield=True):
        await finished.wait()
    if failure:
        raise failure[0]
    return outcome[0]


async def put_streamed(
    store: BlobStore,
    key: str,
    max_bytes: int,
    produce: Callable[[ChunkPipe], Awaitable[T]],
) -> tuple[StoredBlob, T]:
    """Run `store.put(key, ...)` on its own thread while `produce(pipe)` feeds it.

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

    produced: list[T] = []
    produce_error: BaseException | None = None
    async with anyio.create_task_group() as group:
        group.start_soon(in_own_thread, consume)
        try:
            produced.append(await produce(pipe))
            await pipe.finish()
        except BaseException as exc:  # re-raised below, once `put` has stopped
            produce_error = exc
            pipe.abort()
    if put_error and not isinstance(put_error[0], UploadAbortedError):
        raise put_error[0]
    if produce_error is not None:
        raise produce_error
    if put_error:
        raise put_error[0]
    return stored[0], produced[0]


async def send_off_loop(pipe: ChunkPipe, chunk: bytes) -> None:
    """`pipe.send` (kept for callers written when sending needed a worker thread)."""
    await pipe.send(chunk)
