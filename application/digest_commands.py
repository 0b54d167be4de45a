"""The application's side of the weekly digest: its guard and the outbox it queues into.

`application/digests.py` is a service over ports; this module is where the Teaim application
implements two of them: who may preview or send a project's digest (pm and above, every
refusal recorded like any other guard's), and saving `Email` aggregates, where a version
conflict on an email's deterministic id means "already queued", never an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from application.base import TeaimBase
from application.context import CommandContext
from application.digests import SAVE_BATCH, EmailDraft, QueueOutcome
from domain.email import Email
from domain.errors import PermissionDeniedError
from domain.project import Project
from domain.roles import RANK, Permission, Role

# Sending mails every subscriber, external addresses included: for the people who drive the
# project. The preview shows only what `read` already shows through the project's routes.
DIGEST_SEND_MIN_ROLE = Role.PM


class DigestCommands(TeaimBase):
    """The digest's guard and outbox."""

    def authorize_digest(
        self, *, ctx: CommandContext, project_id: UUID, action: str, send: bool
    ) -> Project:
        """The project, if the caller may preview it (`read`) or, with `send`, send its
        digest (pm, admin, owner, or the internal service); refusals are recorded."""
        project, role = self._guard_project(ctx, project_id, Permission.READ, action=action)
        if send and RANK[role] < RANK[DIGEST_SEND_MIN_ROLE]:
            self._deny(
                ctx,
                action=action,
                target_kind="project",
                target_id=project_id,
                reason="missing_permission:digest_send",
            )
            raise PermissionDeniedError(
                f"your role ({role.value}) may not send the digest (pm and above)",
                project_id=project_id,
            )
        return project

    def queue_emails(self, drafts: Sequence[EmailDraft]) -> QueueOutcome:
        """Save new emails in batches; an id saved already (another scheduler, a retry) is
        counted, not raised. A batch with a conflict is built and saved again one email at
        a time (a failed save has consumed the aggregates' pending events)."""
        queued = already = 0
        for start in range(0, len(drafts), SAVE_BATCH):
            batch = drafts[start : start + SAVE_BATCH]
            try:
                self._commit(*(self._email(d) for d in batch))
                queued += len(batch)
                continue
            except IntegrityError:
                pass
            for draft in batch:
                try:
                    self._commit(self._email(draft))
                    queued += 1
                except IntegrityError:
                    already += 1
        return QueueOutcome(queued=queued, already=already)

    def _email(self, draft: EmailDraft) -> Email:
        return Email.queue(
            email_id=draft.email_id,
            kind=draft.kind,
            to=draft.to,
            subject=draft.subject,
            text=draft.text,
            html=draft.html,
            mail_domain=self.config.mail_domain,
            stamp=draft.stamp,
            links=draft.links,
            period=draft.period,
            ref=draft.ref,
        )
