"""A daemon thread that writes a process's buffered figures out every interval, and once more
at stop: shared by the per-org request usage and the server telemetry, which both buffer in
memory so the hot path never waits for the database."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable


class PeriodicFlush:
    """Calls `flush` every `interval` seconds on a daemon thread; a failure is logged (the
    caller keeps what it could not write for the next call), never raised into the thread."""

    def __init__(
        self, flush: Callable[[], object], *, interval: float, name: str, log: logging.Logger
    ) -> None:
        self._flush = flush
        self._interval = interval
        self._name = name
        self._log = log
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (idempotent)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._flush()
            except Exception:
                self._log.warning("%s: cannot write; will retry", self._name, exc_info=True)

    def stop(self) -> None:
        """Stop the thread and write what is left (a failure is logged, not raised)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        try:
            self._flush()
        except Exception:
            self._log.warning("%s: cannot write the last figures", self._name, exc_info=True)
