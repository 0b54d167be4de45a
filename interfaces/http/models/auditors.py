"""Response models of the auditors' routes (verification and as-of views)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel

from interfaces.http.models import ProjectOut, SignOffOut, StageOut


class ChainBreakOut(BaseModel):
    """The first broken event verification found."""

    kind: str
    position: int | None
    aggregate_id: UUID
    version: int
    detail: str


class VerifyOut(BaseModel):
    """Whether a project's history is intact, with what was checked."""

    project_id: UUID
    intact: bool
    events: int
    aggregates: int
    seals: int
    last_position: int
    broken: ChainBreakOut | None


class StageAsOfOut(BaseModel):
    """A stage as it stood, with its sign-off rounds (oldest first)."""

    stage: StageOut
    signoffs: list[SignOffOut]


class ProjectAsOfOut(BaseModel):
    """A project, its stages and their sign-offs at an instant in the past."""

    at: datetime
    project: ProjectOut
    stages: list[StageAsOfOut]
