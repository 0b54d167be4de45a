"""The project-lists read model's query interface: the caller's projects, members, stages.

`ProjectListsProjection` writes the rows; queries read them through `ProjectListsView`, whose
PostgreSQL implementation lives under `adapters/postgres/queries/`. Records are what a list
item is, typed; the HTTP layer maps them to its response models.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol
from uuid import UUID

from domain.roles import Role
from projections.paging import Page, PageRequest

ProjectSort = Literal["name", "newest", "oldest"]


@dataclass(frozen=True, slots=True)
class ProjectListItem:
    """A project of the org, with the reader's role in it (None: the service reads all)."""

    id: UUID
    org_id: UUID
    code: str
    name: str
    archived: bool
    member_count: int
    role: Role | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class MemberListItem:
    """A member of a project: role and signer toggle."""

    user_id: str
    role: Role
    signer: bool
    added_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class StageListItem:
    """A stage and where its current sign-off round stands."""

    id: UUID
    project_id: UUID
    title: str
    order: int
    state: str
    round: int
    signoff_id: UUID | None
    signoff_status: str | None
    signatures_count: int
    required_count: int
    external_pending_count: int
    rejection_reason: str | None
    created_at: datetime
    updated_at: datetime


class ProjectListsView(Protocol):
    """Queries over projects, members and stages; each call is one tenant-bound read."""

    def projects(
        self,
        org_id: UUID,
        *,
        member: str | None,
        archived: bool | None,
        sort: ProjectSort,
        page: PageRequest,
    ) -> Page[ProjectListItem]:
        """Projects `member` belongs to (every project of the org when None)."""
        ...

    def members(self, org_id: UUID, project_id: UUID, *, page: PageRequest) -> Page[MemberListItem]:
        """A project's members by user id (bytewise)."""
        ...

    def stages(
        self, org_id: UUID, project_id: UUID, *, state: str | None, page: PageRequest
    ) -> Page[StageListItem]:
        """A project's stages by their `order`, then creation."""
        ...
