"""Runs each reactor on its own thread inside one process, like `ProjectionHost` for read models.

Each runner tails the log and leads its reactor only while it holds the reactor's advisory
lock, so several processes may host the same reactors: one performs, the others stand by.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.reactor_runner import DecodeEvent, ReactorRunner
from application.reactors import Reactor


class ReactorHost:
    """Starts and stops one supervised runner thread per reactor."""

    def __init__(
        self, reactors: Sequence[Reactor[Any]], url: DatabaseUrl, decode: DecodeEvent
    ) -> None:
        self.runners = [ReactorRunner(reactor, url, decode) for reactor in reactors]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start tailing the log (idempotent)."""
        if self._threads:
            return
        for runner in self.runners:
            thread = threading.Thread(
                target=runner.run, args=(self._stop,), name=f"reactor-{runner.name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        """Ask every runner to stop after its current event, and wait for them."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()
