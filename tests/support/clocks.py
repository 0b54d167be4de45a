"""Clocks for tests: one the test moves by hand (optionally holding callers at a barrier),
and real time for tests that do not depend on it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

# Where a SettableClock starts unless told otherwise (the unit suites' epoch).
EPOCH = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


class SettableClock:
    """A Clock that only moves when a test moves it; it can also hold callers at a barrier.

    `hold(n)` makes the next `n` calls to `now()` wait for each other. The application reads
    the clock once per command, after loading its aggregates and before saving them, so
    holding two commands there guarantees both decided on the same version. A lock guards
    the instant because API tests read it from server threads.
    """

    def __init__(self, start: datetime = EPOCH) -> None:
        self._now = start
        self._lock = threading.Lock()
        self._barrier: threading.Barrier | None = None
        self._holds_left = 0

    def now(self) -> datetime:
        """The current (test) instant; may first wait at an armed barrier."""
        with self._lock:
            barrier = None
            if self._barrier is not None and self._holds_left > 0:
                self._holds_left -= 1
                barrier = self._barrier
            now = self._now
        if barrier is not None:
            # A broken barrier (timeout) raises in the command: an API test then sees a 500.
            barrier.wait()
        return now

    @property
    def at(self) -> datetime:
        """The current instant, without waiting at any barrier."""
        with self._lock:
            return self._now

    def set(self, instant: datetime) -> None:
        """Jump to an instant."""
        with self._lock:
            self._now = instant

    def advance(self, delta: timedelta) -> datetime:
        """Move time forward (or back) and return the new instant."""
        with self._lock:
            self._now += delta
            return self._now

    @contextmanager
    def hold(
        self, callers: int, *, parties: int | None = None, timeout: float = 20.0
    ) -> Iterator[threading.Barrier]:
        """Make the next `callers` callers of now() meet at a barrier before any goes on.

        The barrier has `parties` seats (default: `callers`); a test that takes a seat itself
        (`barrier.wait()`) decides when the held commands may go on.
        """
        barrier = threading.Barrier(parties or callers, timeout=timeout)
        with self._lock:
            self._barrier, self._holds_left = barrier, callers
        try:
            yield barrier
        finally:
            with self._lock:
                self._barrier, self._holds_left = None, 0


class WallClock:
    """Real time (for tests that do not depend on it)."""

    def now(self) -> datetime:
        """This instant, in UTC."""
        return datetime.now(UTC)
