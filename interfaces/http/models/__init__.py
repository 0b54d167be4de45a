"""Request (*In) and response (*Out) models of the HTTP API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from domain.org import Weekday
from domain.raid import RaidKind, RaidStatus, Severity
from domain.roles import Permission, Role
from interfaces.http.models.storable import check_storable

Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Text = Annotated[str, StringConstraints(max_length=20_000)]
Short = Annotated[str, StringConstraints(max_length=2_000)]
UserId = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=48)]
HHMM = Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]


class In(BaseModel):
    """Inputs reject unknown fields: a typo must not be silently ignored."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        # The one check that every text and integer of a body can be stored in the log
        # (valid Unicode, I-JSON integers), before any field sees it: see models.storable.
        check_storable(data)
        return data


class CommandOut(BaseModel):
    """The aggregate a command touched and the position of its last event."""

    id: UUID
    position: int


# Orgs ------------------------------------------------------------------------------------


class QuietHoursIO(In):
    """A daily no-email window in the org's timezone (may wrap midnight)."""

    start: HHMM
    end: HHMM


class DigestIO(In):
    """The weekly digest slot in the org's timezone."""

    weekday: Weekday
    at: HHMM


class OrgSettingsPatch(In):
    """Org settings to change; omitted fields stay, null clears quiet hours or digest."""

    name: Name | None = None
    timezone: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    quiet_hours: QuietHoursIO | None = None
    daily_email_cap: int | None = Field(default=None, ge=0, le=1000)
    digest: DigestIO | None = None


class OrgOut(BaseModel):
    """An org and its settings."""

    id: UUID
    name: str
    timezone: str
    quiet_hours: QuietHoursIO | None
    daily_email_cap: int
    digest: DigestIO | None
    version: int


# Projects and members ----------------------------------------------------------------------


class ProjectIn(In):
    """A new project."""

    code: Annotated[str, StringConstraints(min_length=2, max_length=32)]
    name: Name


class ProjectPatch(In):
    """Project fields to change."""

    name: Name


class MemberIn(In):
    """A member to add."""

    user_id: UserId
    role: Role
    signer: bool = False


class MemberPatch(In):
    """A member's role and/or signer toggle."""

    role: Role | None = None
    signer: bool | None = None


class MemberOut(BaseModel):
    """A member with what their role (and toggle) allows."""

    user_id: str
    role: Role
    signer: bool
    permissions: list[Permission]


class ProjectOut(BaseModel):
    """A project as its members see it."""

    id: UUID
    org_id: UUID
    code: str
    name: str
    archived: bool
    members: list[MemberOut]
    version: int


# Stages and sign-offs ----------------------------------------------------------------------


class StageIn(In):
    """A new stage."""

    title: Name
    order: int = Field(default=0, ge=0, le=10_000)


class StagePatch(In):
    """Stage fields to change."""

    title: Name


class StageOut(BaseModel):
    """A stage and where it stands."""

    id: UUID
    project_id: UUID
    title: str
    order: int
    state: str
    round: int
    signoff_id: UUID | None
    rejection_reason: str | None
    version: int


class SignOffRequestIn(In):
    """Members who must sign (empty: any one member allowed to sign)."""

    signers: list[UserId] = Field(default_factory=list, max_length=50)


class SignIn(In):
    """A signature's optional comment."""

    comment: Short = ""


class RejectIn(In):
    """Why the stage is rejected."""

    reason: Annotated[str, StringConstraints(min_length=1, max_length=2000)]


class ReopenIn(In):
    """Why the stage goes back to draft."""

    reason: Short = ""


class ExternalInviteIn(In):
    """An external signer to invite, and how long the link lives (default 7 days)."""

    email: Annotated[str, StringConstraints(min_length=3, max_length=320)]
    expires_in_hours: float | None = Field(default=None, gt=0, le=24 * 90)


class ExternalInviteOut(BaseModel):
    """The link for the external signer: the token is shown once, here, and never again."""

    id: UUID
    position: int
    request_id: UUID
    token: str
    expires_at: datetime
    signing_url: str


class SignatureOut(BaseModel):
    """One decision on a sign-off round."""

    signer: str
    external: bool
    name: str
    decision: str
    comment: str
    at: datetime
    ip: str | None
    user_agent: str | None


class ExternalRequestOut(BaseModel):
    """An external link's state (never its token)."""

    request_id: UUID
    email: str
    expires_at: datetime
    status: str


class SignOffOut(BaseModel):
    """A sign-off round."""

    id: UUID
    stage_id: UUID
    round: int
    status: str
    required: list[str]
    signatures: list[SignatureOut]
    external: list[ExternalRequestOut]
    version: int


class SigningViewOut(BaseModel):
    """What an external signer is asked to sign, and where their own link stands.

    Nothing about the round's other signers: not their user ids, names, emails or decisions.
    """

    project_code: str
    project_name: str
    stage_title: str = Field(description="The stage to be signed off.")
    round: int = Field(description="Which sign-off round of the stage this link belongs to.")
    email: str = Field(description="The address this link was issued to.")
    expires_at: datetime
    status: str = Field(description="The round's status (open while it awaits decisions).")
    your_status: str = Field(description="This link's status: pending until it is used.")


class PublicSignIn(In):
    """An external signature."""

    name: Name
    comment: Short = ""


class PublicRejectIn(In):
    """An external rejection."""

    name: Name
    reason: Annotated[str, StringConstraints(min_length=1, max_length=2000)]


# Content -----------------------------------------------------------------------------------


class ArtifactPatch(In):
    """Document fields to change."""

    name: Name | None = None
    tags: list[Tag] | None = Field(default=None, max_length=32)


class ArtifactOut(BaseModel):
    """A document: its current content version and where its ingestion stands."""

    id: UUID
    project_id: UUID
    name: str
    mime: str = Field(description="The current content's type, sniffed from its bytes.")
    size: int
    sha256: str
    blob_key: str
    tags: list[str]
    deleted: bool
    version: int
    content_version: int = Field(description="0: registered without bytes (legacy).")
    claimed_mime: str | None = Field(description="The type the uploader claimed.")
    mime_mismatch: bool = Field(description="Whether the claim contradicts the bytes.")
    source: str = Field(description="`upload` or `url`.")
    source_url: str | None
    ingestion: str = Field(
        description="no_content, pending, queued, extracted, indexed, needs_ocr or failed."
    )
    method: str | None = Field(description="How the text was extracted (pdf_text, ocr_pdf...).")
    page_count: int | None
    reason: str | None = Field(description="Why OCR is needed or ingestion failed (a code).")
    published: bool


class RaidFields(In):
    """RAID item fields (all optional on update)."""

    title: Name | None = None
    description: Text | None = None
    owner: UserId | None = None
    status: RaidStatus | None = None
    severity: Severity | None = None
    due_date: date | None = None
    decided_by: UserId | None = None

    @field_validator("title", "description", "status")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Fix (API tests): only owner, severity, due_date and decided_by can be cleared. A null
        # title, description or status went on to the domain as "set to None" and crashed
        # it (a 500); these fields may be omitted, never sent as null.
        if value is None:
            raise ValueError("may be omitted, but not null")
        return value

    def changes(self) -> dict[str, Any]:
        """Only the fields the client sent (null included: it clears)."""
        return self.model_dump(exclude_unset=True, mode="json")


class RaidIn(RaidFields):
    """A new RAID item."""

    kind: RaidKind
    title: Name


class RaidCloseIn(In):
    """How the item was resolved."""

    resolution: Short = ""


class RaidOut(BaseModel):
    """A RAID log item."""

    id: UUID
    project_id: UUID
    kind: RaidKind
    title: str
    description: str
    owner: str | None
    status: RaidStatus
    severity: Severity | None
    due_date: str | None
    decided_by: str | None
    resolution: str | None
    version: int


class MemoryIn(In):
    """A new memory."""

    title: Name
    body: Text = ""
    tags: list[Tag] = Field(default_factory=list, max_length=32)


class MemoryPatch(In):
    """Memory fields to change."""

    title: Name | None = None
    body: Text | None = None
    tags: list[Tag] | None = Field(default=None, max_length=32)


class MemoryOut(BaseModel):
    """A project memory."""

    id: UUID
    project_id: UUID
    title: str
    body: str
    tags: list[str]
    closed: bool
    version: int


# Roles ---------------------------------------------------------------------------------


class RoleOut(BaseModel):
    """One role: what it may do and what it is for."""

    role: Role
    rank: int
    legend: str
    permissions: list[Permission]
    org_permissions: list[str]


class RoleMatrixOut(BaseModel):
    """The role matrix the server enforces."""

    roles: list[RoleOut]
    permissions: list[Permission]
    signer_toggle: str
