"""Response models of the auditors' routes (verification and as-of views)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel

from interfaces.http.models import ProjectOut, SignOffOut, StageOut


class ChainBreakOut(BaseModel):
    """The first broken event verification found.

    `kind`: content, chain, gap, seal, stamp (org/project differ from the event's own stamps
    or its aggregate's), position (a missing position of the log), anchor (no seal has it).
    """

    kind: str
    position: int | None
    aggregate_id: UUID
    version: int
    detail: str


class VerifyOut(BaseModel):
    """Whether a project's history is intact, with what was checked."""

    # None only for the whole store (`teaim audit verify` without a project).
    project_id: UUID | None
    intact: bool
    events: int
    aggregates: int
    seals: int
    last_position: int
    broken: ChainBreakOut | None
    # With an anchor: whether a seal with that hash was found (None: no anchor given).
    anchored: bool | None = None


class StageAsOfOut(BaseModel):
    """A stage as it stood, with its sign-off rounds (oldest first)."""

    stage: StageOut
    signoffs: list[SignOffOut]


class ProjectAsOfOut(BaseModel):
    """A project, its stages and their sign-offs at an instant in the past."""

    at: datetime
    project: ProjectOut
    stages: list[StageAsOfOut]
