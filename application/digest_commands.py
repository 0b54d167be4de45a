"""The application's side of the weekly digest: its guard and the outbox it queues into.

`application/digests.py` is a service over ports; this module is where the Teaim application
implements two of them: who may preview or send a project's digest (pm and above, every
refusal recorded like any other guard's), and saving `Email` aggregates, where a version
conflict on an email's deterministic id means "already queued", never an error.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from uuid import UUID

from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError

from application.base import TeaimBase
from application.context import CommandContext
from application.digests import SAVE_BATCH, EmailDraft, QueueOutcome
from domain.email import Email
from domain.errors import PermissionDeniedError
from domain.project import Project
from domain.roles import RANK, Permission, Role

log = logging.getLogger("teaim.digests")

# The store as a whole is unavailable: the run stops (nothing is any one email's fault).
_UNAVAILABLE = (OperationalError, InterfaceError)

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
        counted, not raised. An email that cannot be built (`Email.queue` refuses it) is
        listed as failed and left out of its batch; a batch whose save fails for any other
        reason (a conflict, one bad email) is built and saved again one email at a time (a
        failed save has consumed the aggregates' pending events), so one email's error
        never loses the rest of the batch, other orgs' emails included. Only a store that
        is unavailable as a whole (`OperationalError`, `InterfaceError`: connection lost,
        server shutting down) raises: that is nobody's email's fault, what was saved stays
        saved and the next run takes the rest."""
        queued = already = 0
        failed: list[UUID] = []
        for start in range(0, len(drafts), SAVE_BATCH):
            batch = self._buildable(drafts[start : start + SAVE_BATCH], failed)
            if not batch:
                continue
            try:
                self._commit(*(email for _, email in batch))
                queued += len(batch)
                continue
            except _UNAVAILABLE:
                raise
            except Exception:  # noqa: S110 - saved again one by one just below
                pass
            for draft, _ in batch:
                try:
                    self._commit(self._email(draft))
                    queued += 1
                except IntegrityError:
                    already += 1
                except _UNAVAILABLE:
                    raise
                except Exception as error:  # this email only; logged
                    failed.append(draft.email_id)
                    self._log_failed(draft, error)
        return QueueOutcome(queued=queued, already=already, failed=tuple(failed))

    def _buildable(
        self, drafts: Sequence[EmailDraft], failed: list[UUID]
    ) -> list[tuple[EmailDraft, Email]]:
        built: list[tuple[EmailDraft, Email]] = []
        for draft in drafts:
            try:
                built.append((draft, self._email(draft)))
            except Exception as error:  # this email only; logged
                failed.append(draft.email_id)
                self._log_failed(draft, error)
        return built

    @staticmethod
    def _log_failed(draft: EmailDraft, error: Exception) -> None:
        log.error(
            "org %s project %s: email %s (%s) not queued: %s",
            draft.stamp.org_id,
            draft.stamp.project_id,
            draft.email_id,
            draft.kind.value,
            type(error).__name__,
            exc_info=error,
            extra={"org_id": str(draft.stamp.org_id)},
        )

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
