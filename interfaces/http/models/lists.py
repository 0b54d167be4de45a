"""Response models of the project lists (each list is a page plus the cursor of the next)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from domain.project import Membership
from domain.raid import RaidKind, RaidStatus, Severity
from domain.roles import Permission, Role
from projections.documents_view import DocumentListItem
from projections.lists_view import MemberListItem, ProjectListItem, StageListItem
from projections.paging import Page
from projections.raid_view import MemoryListItem, RaidListItem

StageState = Literal["draft", "in_review", "signed_off", "rejected"]
SignOffStatus = Literal["open", "completed", "rejected", "cancelled"]


class ProjectListItemOut(BaseModel):
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


class ProjectPageOut(BaseModel):
    """A page of projects; `next_cursor` continues it (null at the end)."""

    items: list[ProjectListItemOut]
    next_cursor: str | None


class MemberListItemOut(BaseModel):
    """A member, their role and signer toggle, and what that lets them do."""

    user_id: str
    role: Role
    signer: bool
    permissions: list[Permission]
    added_at: datetime
    updated_at: datetime


class MemberPageOut(BaseModel):
    """A page of members by user id; `next_cursor` continues it (null at the end)."""

    items: list[MemberListItemOut]
    next_cursor: str | None
    org_auditors: list[str] = Field(
        description=(
            "Users the org named auditors: not members, yet they read this project's whole"
            " history (every such read is recorded in the audit feed)."
        )
    )


class StageListItemOut(BaseModel):
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


class StagePageOut(BaseModel):
    """A page of stages by order; `next_cursor` continues it (null at the end)."""

    items: list[StageListItemOut]
    next_cursor: str | None


class DocumentListItemOut(BaseModel):
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
    content_version: int
    claimed_mime: str | None
    mime_mismatch: bool
    source: str
    source_url: str | None
    ingestion: str
    method: str | None
    page_count: int | None
    reason: str | None
    published: bool


class DocumentPageOut(BaseModel):
    """A page of documents; `next_cursor` continues it (null at the end)."""

    items: list[DocumentListItemOut]
    next_cursor: str | None


class RaidListItemOut(BaseModel):
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


class RaidPageOut(BaseModel):
    """A page of RAID items; `next_cursor` continues it (null at the end)."""

    items: list[RaidListItemOut]
    next_cursor: str | None


class MemoryListItemOut(BaseModel):
    """A project memory."""

    id: UUID
    project_id: UUID
    title: str
    body: str
    tags: list[str]
    closed: bool
    created_at: datetime
    updated_at: datetime


class MemoryPageOut(BaseModel):
    """A page of memories; `next_cursor` continues it (null at the end)."""

    items: list[MemoryListItemOut]
    next_cursor: str | None


# From the queries' records ----------------------------------------------------------------


def project_page_out(page: Page[ProjectListItem]) -> ProjectPageOut:
    """A page of projects."""
    return ProjectPageOut(
        items=[ProjectListItemOut.model_validate(i, from_attributes=True) for i in page.items],
        next_cursor=page.next_cursor,
    )


def _member(item: MemberListItem) -> MemberListItemOut:
    membership = Membership(role=item.role, signer=item.signer)
    return MemberListItemOut(
        user_id=item.user_id,
        role=membership.role,
        signer=membership.signer,
        permissions=[p for p in Permission if membership.allows(p)],
        added_at=item.added_at,
        updated_at=item.updated_at,
    )


def member_page_out(page: Page[MemberListItem], org_auditors: list[str]) -> MemberPageOut:
    """A page of members, with what each member's role and toggle let them do."""
    return MemberPageOut(
        items=[_member(i) for i in page.items],
        next_cursor=page.next_cursor,
        org_auditors=org_auditors,
    )


def stage_page_out(page: Page[StageListItem]) -> StagePageOut:
    """A page of stages."""
    return StagePageOut(
        items=[StageListItemOut.model_validate(i, from_attributes=True) for i in page.items],
        next_cursor=page.next_cursor,
    )


def document_page_out(page: Page[DocumentListItem]) -> DocumentPageOut:
    """A page of documents."""
    return DocumentPageOut(
        items=[DocumentListItemOut.model_validate(i, from_attributes=True) for i in page.items],
        next_cursor=page.next_cursor,
    )


def raid_page_out(page: Page[RaidListItem]) -> RaidPageOut:
    """A page of RAID items."""
    return RaidPageOut(
        items=[RaidListItemOut.model_validate(i, from_attributes=True) for i in page.items],
        next_cursor=page.next_cursor,
    )


def memory_page_out(page: Page[MemoryListItem]) -> MemoryPageOut:
    """A page of memories."""
    return MemoryPageOut(
        items=[MemoryListItemOut.model_validate(i, from_attributes=True) for i in page.items],
        next_cursor=page.next_cursor,
    )
