"""In-memory ports of the digest service, for unit tests of its pure logic."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from application.context import CommandContext
from application.digest_content import DigestKey, DigestSections
from application.digests import (
    DigestTarget,
    EmailDraft,
    OrgDigestSettings,
    PendingProject,
    QueueOutcome,
)
from domain.project import Project


@dataclass
class FakeSource:
    """Orgs, projects and recipients held in lists; pending = no draft queued for it yet."""

    orgs: list[OrgDigestSettings] = field(default_factory=list)
    projects: list[PendingProject] = field(default_factory=list)
    addresses: dict[UUID, list[str]] = field(default_factory=dict)
    queued: set[tuple[UUID, str, str]] = field(default_factory=set)
    skips: list[DigestTarget] = field(default_factory=list)

    def digest_orgs(self) -> list[OrgDigestSettings]:
        return list(self.orgs)

    def pending_projects(self, due: Sequence[tuple[UUID, str]], limit: int) -> list[PendingProject]:
        periods = dict(due)
        skipped = {(s.project_id, s.period) for s in self.skips}
        found = [
            p
            for p in self.projects
            if p.org_id in periods
            and (p.project_id, periods[p.org_id]) not in skipped
            and any(
                (p.project_id, a, periods[p.org_id]) not in self.queued
                for a in self.addresses.get(p.project_id, [])
            )
        ]
        return [
            PendingProject(p.org_id, p.project_id, p.code, p.name, periods[p.org_id])
            for p in found[:limit]
        ]

    def pending_recipients(self, targets: Sequence[DigestTarget]) -> dict[UUID, list[str]]:
        return {
            t.project_id: [
                a
                for a in self.addresses.get(t.project_id, [])
                if (t.project_id, a, t.period) not in self.queued
            ]
            for t in targets
        }

    def record_skips(self, targets: Sequence[DigestTarget]) -> None:
        self.skips.extend(targets)

    def org_settings(self, org_id: UUID) -> OrgDigestSettings | None:
        return next((o for o in self.orgs if o.org_id == org_id), None)

    def recipients(self, org_id: UUID, project_id: UUID) -> list[str]:  # noqa: ARG002 - one org
        return list(self.addresses.get(project_id, []))

    def manual_emails_since(self, org_id: UUID, project_id: UUID, since: datetime) -> int:
        # The tick never asks; the bound is tested over HTTP (tests/api/test_digest_api.py).
        del org_id, project_id, since
        return 0


@dataclass
class FakeContent:
    """Sections by project; records every call."""

    sections_of: dict[UUID, DigestSections] = field(default_factory=dict)
    calls: list[list[DigestKey]] = field(default_factory=list)

    def sections(self, keys: Sequence[DigestKey]) -> dict[UUID, DigestSections]:
        self.calls.append(list(keys))
        return {
            k.project_id: self.sections_of[k.project_id]
            for k in keys
            if k.project_id in self.sections_of
        }


@dataclass
class FakeOutbox:
    """Keeps drafts by id: a repeated id is `already`, as the store's conflict would be."""

    source: FakeSource
    drafts: dict[UUID, EmailDraft] = field(default_factory=dict)
    # Projects whose emails the store refuses (listed as failed, as `queue_emails` does).
    refuse: set[UUID] = field(default_factory=set)

    def queue_emails(self, drafts: Sequence[EmailDraft]) -> QueueOutcome:
        queued = already = 0
        failed: list[UUID] = []
        for draft in drafts:
            if draft.stamp.project_id in self.refuse:
                failed.append(draft.email_id)
                continue
            if draft.email_id in self.drafts:
                already += 1
                continue
            self.drafts[draft.email_id] = draft
            assert draft.stamp.project_id is not None
            if draft.period is not None:
                self.source.queued.add((draft.stamp.project_id, draft.to, draft.period))
            queued += 1
        return QueueOutcome(queued=queued, already=already, failed=tuple(failed))


class NoGuard:
    """The tick needs no guard (requests are tested over HTTP)."""

    def authorize_digest(
        self, *, ctx: CommandContext, project_id: UUID, action: str, send: bool
    ) -> Project:
        del ctx, project_id, action, send
        raise AssertionError("the tick never authorises a caller")
