"""Response models of the project lists (each list is a page plus the cursor of the next)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from domain.raid import RaidKind, RaidStatus, Severity
from domain.roles import Permission, Role

StageState = Literal["draft", "in_review", "signed_off", "rejected"]
SignOffStatus = Literal["open", "completed", "rejected", "cancelled"]


class ProjectItem(BaseModel):
    """A project the caller belongs to, with the caller's role in it."""

    id: UUID
    org_id: UUID
    code: str
    name: str
    archived: bool
    member_count: int
    role: Role | None = Field(description="The caller's role (null for the internal service).")
    created_at: datetime
    updated_at: datetime


class ProjectPage(BaseModel):
    """A page of projects; `next_cursor` continues it (null at the end)."""

    items: list[ProjectItem]
    next_cursor: str | None


class MemberItem(BaseModel):
    """A member, their role and signer toggle, and what that lets them do."""

    user_id: str
    role: Role
    signer: bool
    permissions: list[Permission]
    added_at: datetime
    updated_at: datetime


class MemberPage(BaseModel):
    """A page of members by user id; `next_cursor` continues it (null at the end)."""

    items: list[MemberItem]
    next_cursor: str | None


class StageItem(BaseModel):
    """A stage and where its current sign-off round stands."""

    id: UUID
    project_id: UUID
    title: str
    order: int
    state: StageState
    round: int
    signoff_id: UUID | None
    signoff_status: SignOffStatus | None = Field(description="Null until sign-off is requested.")
    signatures_count: int = Field(description="Signatures recorded in the current round.")
    required_count: int = Field(
        description="Named members plus live external signers; 0 means any one signer suffices."
    )
    external_pending_count: int = Field(
        description="External links issued, not yet used or revoked, while the round is open "
        "(an expired link counts until it is replaced or the round closes)."
    )
    rejection_reason: str | None
    created_at: datetime
    updated_at: datetime


class StagePage(BaseModel):
    """A page of stages by order; `next_cursor` continues it (null at the end)."""

    items: list[StageItem]
    next_cursor: str | None


class DocumentItem(BaseModel):
    """A live (not deleted) document of a project."""

    id: UUID
    project_id: UUID
    name: str
    mime: str
    size: int
    sha256: str
    tags: list[str]
    created_at: datetime
    updated_at: datetime


class DocumentPage(BaseModel):
    """A page of documents; `next_cursor` continues it (null at the end)."""

    items: list[DocumentItem]
    next_cursor: str | None


class RaidItemRow(BaseModel):
    """A RAID log item as lists show it (the full item is at `/raid/{item_id}`)."""

    id: UUID
    project_id: UUID
    kind: RaidKind
    title: str
    owner: str | None
    status: RaidStatus
    severity: Severity | None
    due_date: date | None
    decided_by: str | None
    created_at: datetime
    updated_at: datetime


class RaidPage(BaseModel):
    """A page of RAID items; `next_cursor` continues it (null at the end)."""

    items: list[RaidItemRow]
    next_cursor: str | None


class MemoryItem(BaseModel):
    """A project memory."""

    id: UUID
    project_id: UUID
    title: str
    body: str
    tags: list[str]
    closed: bool
    created_at: datetime
    updated_at: datetime


class MemoryPage(BaseModel):
    """A page of memories; `next_cursor` continues it (null at the end)."""

    items: list[MemoryItem]
    next_cursor: str | None
