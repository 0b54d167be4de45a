"""What a timed job is: an id, a grid of run times, and the work one run does.

Run times sit on a fixed grid (`anchor + k * every`) computed in whole microseconds, so every
scheduler process, whenever it started, names a given run by the same (job id, time) key:
that key is what lets exactly one process claim it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

# Grids start here unless a job says otherwise: hourly jobs fall on the hour, daily at 00:00Z.
GRID_ANCHOR = datetime(2000, 1, 1, tzinfo=UTC)

JobResult = Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class JobRun:
    """One scheduled run, as the job's work sees it."""

    job_id: str
    scheduled_at: datetime
    process: str
    # What the job's newest successful run returned (None: never ran, or pruned), so a job
    # can carry a cursor (the sealer: the last position it covered) from run to run.
    previous_result: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class JobSpec:
    """A timed job. `run` must be idempotent: a run may repeat after a crash mid-way."""

    id: str
    every: timedelta
    run: Callable[[JobRun], JobResult]
    description: str
    anchor: datetime = GRID_ANCHOR
    # How late a run may still start; later, it is recorded as missed. Default: one period.
    misfire_grace: timedelta | None = None
    # Fire the latest slot at start-up when no process ran it (a service restarted more often
    # than the period would otherwise never run the job).
    catch_up: bool = True
    # Run several slots of this job at once in one process (runs of different slots may
    # overlap across processes anyway: jobs are idempotent).
    max_instances: int = 1

    def __post_init__(self) -> None:
        if self.every <= timedelta(0):
            raise ValueError(f"job {self.id}: `every` must be positive")
        if self.anchor.tzinfo is None:
            raise ValueError(f"job {self.id}: the grid anchor must be timezone-aware")
        if not self.id or len(self.id) > 100:
            raise ValueError("a job id is 1-100 characters")

    @property
    def grace(self) -> timedelta:
        """How late a run may start before it counts as missed."""
        return self.every if self.misfire_grace is None else self.misfire_grace

    def slot_at_or_before(self, instant: datetime) -> datetime:
        """The newest run time not after `instant`."""
        step = _micros(self.every)
        return self.anchor + timedelta(microseconds=(_micros(instant - self.anchor) // step) * step)

    def slot_at_or_after(self, instant: datetime) -> datetime:
        """The oldest run time not before `instant`."""
        step = _micros(self.every)
        return self.anchor + timedelta(
            microseconds=-((-_micros(instant - self.anchor)) // step) * step
        )

    def run_key(self, scheduled_at: datetime) -> datetime:
        """The grid slot a run time names (the time itself when it is on the grid)."""
        step = _micros(self.every)
        offset = _micros(scheduled_at - self.anchor)
        # Nearest slot: a trigger that computed the time in floating point is off by a
        # microsecond at most, never by half a period.
        return self.anchor + timedelta(microseconds=((offset + step // 2) // step) * step)


def _micros(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
