"""Turning aggregates into response models."""

from __future__ import annotations

from application.results import CommandResult
from domain.artifact import Artifact
from domain.mime import mime_mismatch
from domain.org import Org
from domain.project import Project
from domain.raid import Memory, RaidItem
from domain.roles import Permission
from domain.signoff import Signature, SignOff
from domain.stage import Stage
from interfaces.http.models import (
    ArtifactOut,
    CommandOut,
    DigestIO,
    ExternalRequestOut,
    MemberOut,
    MemoryOut,
    OrgOut,
    ProjectOut,
    QuietHoursIO,
    RaidOut,
    SignatureOut,
    SignOffOut,
    StageOut,
)


def command_out(result: CommandResult) -> CommandOut:
    """A command's result."""
    return CommandOut(id=result.id, position=result.position)


def org_out(org: Org) -> OrgOut:
    """An org with its settings."""
    return OrgOut(
        id=org.id,
        name=org.name,
        timezone=org.timezone,
        quiet_hours=None
        if org.quiet_hours is None
        else QuietHoursIO(start=org.quiet_hours.start, end=org.quiet_hours.end),
        daily_email_cap=org.daily_email_cap,
        digest=None
        if org.digest is None
        else DigestIO(weekday=org.digest.weekday, at=org.digest.at),
        version=org.version,
    )


def project_out(project: Project) -> ProjectOut:
    """A project with its members and their effective permissions."""
    members = [
        MemberOut(
            user_id=user_id,
            role=m.role,
            signer=m.signer,
            permissions=[p for p in Permission if m.allows(p)],
        )
        for user_id, m in sorted(project.members.items())
    ]
    return ProjectOut(
        id=project.id,
        org_id=project.org_id,
        code=project.code,
        name=project.name,
        archived=project.archived,
        members=members,
        version=project.version,
    )


def stage_out(stage: Stage) -> StageOut:
    """A stage."""
    return StageOut(
        id=stage.id,
        project_id=stage.project_id,
        title=stage.title,
        order=stage.order,
        state=stage.state.value,
        round=stage.round,
        signoff_id=stage.signoff_id,
        rejection_reason=stage.rejection_reason,
        version=stage.version,
    )


def signature_out(s: Signature, *, with_origins: bool = True) -> SignatureOut:
    """One decision; where it was made from (IP, user agent) only when asked for."""
    return SignatureOut(
        signer=s.signer,
        external=s.external,
        name=s.name,
        decision=s.decision.value,
        comment=s.comment,
        at=s.at,
        ip=s.ip if with_origins else None,
        user_agent=s.user_agent if with_origins else None,
    )


def signoff_out(signoff: SignOff, *, with_origins: bool) -> SignOffOut:
    """A sign-off round, without token material; signers' IPs and agents only for auditors."""
    return SignOffOut(
        id=signoff.id,
        stage_id=signoff.stage_id,
        round=signoff.round,
        status=signoff.status.value,
        required=list(signoff.required),
        signatures=[
            signature_out(s, with_origins=with_origins) for s in signoff.signatures.values()
        ],
        external=[
            ExternalRequestOut(
                request_id=r.request_id,
                email=r.email,
                expires_at=r.expires_at,
                status=r.status.value,
            )
            for r in signoff.external.values()
        ],
        version=signoff.version,
    )


def artifact_out(a: Artifact) -> ArtifactOut:
    """A registered document."""
    return ArtifactOut(
        id=a.id,
        project_id=a.project_id,
        name=a.name,
        mime=a.mime,
        size=a.size,
        sha256=a.sha256,
        blob_key=a.blob_key,
        tags=list(a.tags),
        deleted=a.deleted,
        version=a.version,
        content_version=a.content_version,
        claimed_mime=a.claimed_mime,
        mime_mismatch=mime_mismatch(a.claimed_mime, a.mime),
        source=a.source,
        source_url=a.source_url,
        ingestion=a.ingestion,
        method=a.method,
        page_count=a.page_count,
        reason=a.reason,
        published=a.published,
    )


def raid_out(item: RaidItem) -> RaidOut:
    """A RAID item."""
    return RaidOut(
        id=item.id,
        project_id=item.project_id,
        kind=item.kind,
        title=item.title,
        description=item.description,
        owner=item.owner,
        status=item.status,
        severity=item.severity,
        due_date=item.due_date,
        decided_by=item.decided_by,
        resolution=item.resolution,
        version=item.version,
    )


def memory_out(m: Memory) -> MemoryOut:
    """A memory."""
    return MemoryOut(
        id=m.id,
        project_id=m.project_id,
        title=m.title,
        body=m.body,
        tags=list(m.tags),
        closed=m.closed,
        version=m.version,
    )
