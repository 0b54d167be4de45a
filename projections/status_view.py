"""Where each read model stands: the query interface operators and org admins read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ProjectionState:
    """One read model's position and lag against the head of the log."""

    name: str
    position: int
    head: int
    lag_events: int
    lag_seconds: float
    status: str
    error: str | None
    failed_position: int | None
    updated_at: datetime | None


class ProjectionStatusView(Protocol):
    """The tracking table of every projection (holds no tenant data)."""

    def states(self) -> list[ProjectionState]:
        """Every projection the service runs, in start order."""
        ...
