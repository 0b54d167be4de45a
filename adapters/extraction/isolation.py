"""One forked child process per document for the native parsers and external programs.

The child lowers its own address-space limit (RLIMIT_AS, inherited by the tesseract and
pdftoppm it starts) before touching the file, so a decompression or zip bomb that gets past the
header checks ends in a MemoryError or a dead child, never in the server. A watchdog kills the
child's whole process group past the document timeout: per-page timeouts bound Tesseract and
pdftoppm, the watchdog bounds everything else (a PDFium loop on a crafted file, say).

Children are forked by a "zygote": a small single-threaded process started once per concurrent
caller (`spawn`, never `fork` of the threaded server), which has the parsers imported. Forking
it costs milliseconds; starting a child the multiprocessing way would re-import the server's
main module and the parsers for every document (a second or more). Each child is still a fresh
fork: nothing of one document's process reaches the next one's.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import pickle
import queue
import resource
import selectors
import signal
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Literal

from adapters.extraction.config import ExtractionLimits, OcrOptions
from application.ingestion_ports import ExtractionOutcome, ExtractionRefused, OcrNeeded

IsolatedKind = Literal["html", "docx", "pdf", "image"]
_MIB = 1024 * 1024
# The most a child may send back (the text is bounded well below: MAX_TEXT_CHARS).
_MAX_RESULT_BYTES = 64 * _MIB
# Beyond the document timeout, when a child ends itself (its zygote normally kills it first).
_SELF_DEADLINE_GRACE_SECONDS = 5
# Beyond the document timeout, how long the caller waits for the zygote itself.
_ZYGOTE_GRACE_SECONDS = 30.0


class ExtractionCrashedError(RuntimeError):
    """The child raised something unexpected (a disk error, a bug): worth a retry."""


class IsolatedRunner:
    """Runs extractions in forked children; keeps one idle zygote per past concurrent caller."""

    def __init__(self) -> None:
        self._idle: queue.SimpleQueue[_Zygote] = queue.SimpleQueue()

    def run(
        self, kind: IsolatedKind, path: Path, limits: ExtractionLimits, ocr: OcrOptions
    ) -> ExtractionOutcome:
        """Extract `path` as `kind` in a fresh child under the memory limit and watchdog."""
        try:
            zygote = self._idle.get_nowait()
        except queue.Empty:
            zygote = _Zygote()
        try:
            reply = zygote.run(
                (kind, str(path), limits, ocr),
                timeout=ocr.document_timeout_seconds + _ZYGOTE_GRACE_SECONDS,
            )
        except BaseException:
            zygote.stop()
            raise
        self._idle.put(zygote)
        return _outcome(kind, reply, ocr)

    def close(self) -> None:
        """Stop the idle zygotes (the busy ones stop when their caller returns them)."""
        while True:
            try:
                self._idle.get_nowait().stop()
            except queue.Empty:
                return


class _Zygote:
    """The caller's end of one zygote process."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, theirs = context.Pipe()
        self._process = context.Process(
            target=_zygote_main, args=(theirs,), name="teaim-extract-zygote", daemon=True
        )
        self._process.start()
        theirs.close()

    def run(self, job: tuple[object, ...], *, timeout: float) -> tuple[str, object]:
        try:
            self._conn.send(job)
            if not self._conn.poll(timeout):
                raise ExtractionCrashedError("the extraction zygote did not answer")
            reply: tuple[str, object] = self._conn.recv()
        except (EOFError, OSError) as error:
            # It could not start or died: the caller drops it, the job is retried.
            raise ExtractionCrashedError(f"the extraction zygote died: {error!r}") from None
        return reply

    def stop(self) -> None:
        self._conn.close()
        self._process.kill()
        self._process.join(10)


def _outcome(kind: IsolatedKind, reply: tuple[str, object], ocr: OcrOptions) -> ExtractionOutcome:
    status, value = reply
    if status == "ok":
        return value  # type: ignore[return-value]  # the child pickles only outcomes
    if status == "timeout":
        detail = f"extraction took longer than {ocr.document_timeout_seconds:g} s"
        if kind in ("pdf", "image"):
            # Almost always OCR of a long scan: a person can still type the text.
            return OcrNeeded("ocr_timeout", detail)
        return ExtractionRefused("extraction_timeout", detail)
    if status == "died":
        # Deterministic for the file in almost every case (a crafted file crashing a parser,
        # a bomb past the memory limit): a retry would crash again.
        return ExtractionRefused("worker_crashed", f"the extraction process {value}")
    raise ExtractionCrashedError(f"{kind} extraction failed: {value}")


# The zygote and its children (run in other processes) -----------------------------------


def _zygote_main(conn: Connection) -> None:
    """Import the parsers once, then fork one child per job until the caller hangs up."""
    # Imported here: the parser libraries load in the zygote, never in the server.
    from adapters.extraction import docx_text, html_text, images, pdf  # noqa: F401

    while True:
        try:
            kind, path, limits, ocr = conn.recv()
        except EOFError:
            return
        conn.send(_fork_one(kind, Path(path), limits, ocr))


def _fork_one(
    kind: IsolatedKind, path: Path, limits: ExtractionLimits, ocr: OcrOptions
) -> tuple[str, object]:
    """Fork a child for the job, wait under the watchdog, kill its group whatever happens."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read_end)
        _child(write_end, kind, path, limits, ocr)  # never returns
    os.close(write_end)
    try:
        data, timed_out = _read_until(read_end, time.monotonic() + ocr.document_timeout_seconds)
    finally:
        os.close(read_end)
        # The group: the child and any tesseract or pdftoppm it started. The child is not
        # reaped yet, so its pid (the group's id) cannot belong to anyone else.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    if timed_out:
        return ("timeout", None)
    if not data:
        if os.WIFSIGNALED(status):
            return ("died", f"died of signal {signal.Signals(os.WTERMSIG(status)).name}")
        return ("died", f"exited ({os.waitstatus_to_exitcode(status)}) without an outcome")
    reply: tuple[str, object] = pickle.loads(data)  # noqa: S301 - our own child's bytes
    return reply


def _read_until(fd: int, deadline: float) -> tuple[bytes, bool]:
    """Everything written to `fd` until EOF; (partial data, True) past the deadline."""
    chunks: list[bytes] = []
    size = 0
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                return b"", True
            chunk = os.read(fd, 1024 * 1024)
            if not chunk:
                return b"".join(chunks), False
            size += len(chunk)
            if size > _MAX_RESULT_BYTES:
                return b"", False
            chunks.append(chunk)


def _child(
    write_end: int, kind: IsolatedKind, path: Path, limits: ExtractionLimits, ocr: OcrOptions
) -> None:
    """The forked child: bound itself, extract, write the pickled reply, exit."""
    status = 0
    try:
        # Its own process group: the watchdog kills the programs it starts along with it.
        os.setpgid(0, 0)
        limit = ocr.memory_limit_mb * _MIB
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        # Tesseract's OpenMP threads: one per child (the job queue runs children side by side).
        os.environ["OMP_THREAD_LIMIT"] = "1"
        # Its own deadline too (SIGALRM's default action ends it), should the zygote that
        # watches it be gone.
        signal.alarm(math.ceil(ocr.document_timeout_seconds) + _SELF_DEADLINE_GRACE_SECONDS)
        try:
            reply: tuple[str, object] = ("ok", _extract(kind, path, limits, ocr))
        except MemoryError:
            reply = (
                "ok",
                ExtractionRefused(
                    "memory_limit", f"extraction needed more than {ocr.memory_limit_mb} MiB"
                ),
            )
        except Exception as error:  # anything else: the caller raises it, for a retry
            reply = ("error", f"{type(error).__name__}: {error}"[:300])
        data = pickle.dumps(reply)
        view = memoryview(data)
        while view:
            view = view[os.write(write_end, view) :]
    except BaseException:
        status = 1
    finally:
        # No cleanup of the zygote's state in a forked copy: leave at once.
        os._exit(status)


def _extract(
    kind: IsolatedKind, path: Path, limits: ExtractionLimits, ocr: OcrOptions
) -> ExtractionOutcome:
    from adapters.extraction.docx_text import extract_docx
    from adapters.extraction.html_text import extract_html
    from adapters.extraction.images import ocr_image
    from adapters.extraction.pdf import extract_pdf

    if kind == "html":
        return extract_html(path, limits)
    if kind == "docx":
        return extract_docx(path, limits)
    if kind == "pdf":
        return extract_pdf(path, limits, ocr)
    return ocr_image(path, limits, ocr)
