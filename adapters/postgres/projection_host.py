"""Runs each projection on its own thread inside one process (serve, or `projections run`)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.projection_runner import ProjectionRunner
from projections.base import Projection


class ProjectionHost:
    """Starts and stops one supervised runner thread per projection."""

    def __init__(self, projections: Sequence[Projection], url: DatabaseUrl) -> None:
        self.runners = [ProjectionRunner(p, url) for p in projections]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start tailing the log (idempotent)."""
        if self._threads:
            return
        for runner in self.runners:
            thread = threading.Thread(
                target=runner.run,
                args=(self._stop,),
                name=f"projection-{runner.name}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        """Ask every runner to stop after its current batch, and wait for them."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()
