"""The sign-off package: a stage's documents, RAID items and a message, previewed, zipped or
emailed to an external signer with a one-time link (decision 0029).

Preview and ZIP only read. Sending is one command: it opens the stage's sign-off round if none
is open, issues an external link for the recipient (as `invite_external_signer` does: only the
token's hash is kept), queues the email through the outbox (`Email`, deterministic id from the
request's correlation id, so a retried request queues nothing new) and records `PackageSent`
on the round, all in one atomic save. The token is in the answer and in the message the outbox
sends, nowhere else: the stored email holds a placeholder and a reference to the request, and
the token is derived from the link key at send time (application/email_links.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

from application.base import TeaimBase
from application.context import CommandContext
from application.email_links import EmailLinks
from application.email_templates import render_email, render_html
from domain.artifact import Artifact, IngestionState
from domain.comms_schedule import local_day, next_local_midnight
from domain.email import (
    Email,
    EmailKind,
    LinkName,
    SigningLink,
    email_id_for,
    link_placeholder,
    normalise_address,
)
from domain.errors import InvalidValueError, NotFoundError
from domain.org import Org
from domain.package_quota import (
    OrgPackageQuota,
    PackageQuota,
    org_package_quota_id,
    package_quota_id,
)
from domain.project import Project
from domain.raid import RaidItem, RaidKind
from domain.roles import Permission
from domain.signoff import SignOff, SignOffStatus, hash_token, signoff_id_for
from domain.stage import Stage
from domain.stamps import Stamp
from domain.text import check_text

# Bounds of one package: every count and text a caller chooses is limited, so neither the
# email (Email.MAX_BODY_CHARS) nor the ZIP's work can grow without limit.
MAX_DOCUMENTS = 50
MAX_RAID_ITEMS = 50
MAX_MESSAGE_CHARS = 5_000
# A RAID item's description as the package shows it (the log keeps it whole).
MAX_DESCRIPTION_CHARS = 1_000
MAX_SUBJECT_TITLE_CHARS = 120
TEMPLATE = "signoff_package"
# RAID kinds in the order the package lists them.
SECTIONS: tuple[tuple[RaidKind, str], ...] = (
    (RaidKind.DECISION, "Decisions"),
    (RaidKind.RISK, "Risks"),
    (RaidKind.ACTION, "Actions"),
    (RaidKind.ISSUE, "Issues"),
)


@dataclass(frozen=True, slots=True)
class PackageRequest:
    """What the caller picked: the stage, a message, documents and RAID items (ids)."""

    stage_id: UUID
    message: str = ""
    document_ids: tuple[UUID, ...] = ()
    raid_item_ids: tuple[UUID, ...] = ()
    recipient: str | None = None


@dataclass(frozen=True, slots=True)
class PackageDocument:
    """A selected document, with the values recorded when its bytes were stored."""

    id: UUID
    name: str
    mime: str
    size: int
    sha256: str
    blob_key: str
    # False: the artifact never had bytes (registered before uploads existed).
    has_content: bool


@dataclass(frozen=True, slots=True)
class PackageItem:
    """A selected RAID item as the package lists it."""

    id: UUID
    kind: RaidKind
    title: str
    description: str
    status: str
    severity: str | None
    owner: str | None
    due_date: str | None
    decided_by: str | None


@dataclass(frozen=True, slots=True)
class Package:
    """Everything a package shows, resolved at `generated_at`."""

    project_id: UUID
    project_code: str
    project_name: str
    stage_id: UUID
    stage_title: str
    stage_state: str
    message: str
    recipient: str | None
    documents: tuple[PackageDocument, ...]
    items: tuple[PackageItem, ...]
    generated_at: datetime

    def context(
        self, *, signing_url: str | None = None, expires_at: datetime | None = None
    ) -> dict[str, Any]:
        """The templates' context (one for the preview, the ZIP's README and the email)."""
        sections = [
            {"title": title, "items": [i for i in self.items if i.kind is kind]}
            for kind, title in SECTIONS
        ]
        return {
            "title": f"Sign-off package: {self.stage_title}",
            "project_code": self.project_code,
            "project_name": self.project_name,
            "stage_title": self.stage_title,
            "stage_state": self.stage_state,
            "message": self.message,
            "recipient": self.recipient,
            "documents": self.documents,
            "sections": [s for s in sections if s["items"]],
            "generated_at": self.generated_at.isoformat(timespec="seconds"),
            "signing_url": signing_url,
            "expires_at": None if expires_at is None else f"{expires_at:%Y-%m-%d %H:%M}",
        }

    def html(self) -> str:
        """The package as one HTML page (the preview, and README.html in the ZIP)."""
        return render_html(TEMPLATE, self.context())


@dataclass(frozen=True, slots=True)
class SentPackage:
    """The answer to a send: the link (shown once, never stored) and what was recorded."""

    id: UUID  # the sign-off round
    position: int
    request_id: UUID
    email_id: UUID
    token: str
    signing_url: str
    expires_at: datetime
    opened_round: bool


def package_email_id(
    org_id: UUID, project_id: UUID, stage_id: UUID, recipient: str, correlation_id: str
) -> UUID:
    """The package email of one request: the same request (same correlation id, as an
    Idempotency-Key retry has) names the same email, so it is queued at most once. The org,
    project and stage are part of the name: a client-chosen request id cannot collide with
    another tenant's email."""
    return email_id_for(
        f"org:{org_id}:project:{project_id}:stage:{stage_id}:signoff-package:"
        f"to:{normalise_address(recipient)}:request:{correlation_id}"
    )


def _message(text: str) -> str:
    check_text(text, what="message")
    if len(text) > MAX_MESSAGE_CHARS:
        raise InvalidValueError(f"the message is at most {MAX_MESSAGE_CHARS} characters")
    return text.strip()


def _unique(ids: tuple[UUID, ...], *, limit: int, what: str) -> list[UUID]:
    if len(ids) > limit:
        raise InvalidValueError(f"at most {limit} {what}")
    return list(dict.fromkeys(ids))  # order kept, repeats dropped


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


class SignoffPackageCommands(TeaimBase):
    """Preview, ZIP contents and sending of a stage's sign-off package."""

    def signoff_package(
        self, *, ctx: CommandContext, project_id: UUID, request: PackageRequest
    ) -> Package:
        """The package as it stands now (pm and above: those who invite external signers)."""
        project, _ = self._guard_project(
            ctx, project_id, Permission.INVITE_EXTERNAL_SIGNER, action="signoff.package.read"
        )
        return self._package(project, self._stage(project, request), request)

    def send_signoff_package(
        self,
        *,
        ctx: CommandContext,
        project_id: UUID,
        request: PackageRequest,
        expires_in: timedelta | None = None,
    ) -> SentPackage:
        """Open the round if needed, issue the recipient's link, queue the email and record
        `PackageSent`: one atomic save."""
        project, _ = self._guard_project(
            ctx, project_id, Permission.INVITE_EXTERNAL_SIGNER, action="signoff.package.send"
        )
        project.require_writable()
        if request.recipient is None:
            raise InvalidValueError("a package is sent to a recipient")
        recipient = normalise_address(request.recipient)
        stage = self._stage(project, request)
        package = self._package(project, stage, request)
        ttl = self.config.signing_link_ttl if expires_in is None else expires_in
        if not timedelta(minutes=5) <= ttl <= self.config.signing_link_max_ttl:
            raise InvalidValueError(
                f"link lifetime must be between 5 minutes and {self.config.signing_link_max_ttl}"
            )
        stamp = self._stamp(ctx, project_id)
        signoff = None if stage.signoff_id is None else self._find(SignOff, stage.signoff_id)
        touched: list[Stage | SignOff | Email | PackageQuota | OrgPackageQuota] = []
        opened = signoff is None or signoff.status is not SignOffStatus.OPEN
        if opened:
            # A round naming nobody internal: the external link holder is its named signer.
            round_number = stage.next_signoff_round()
            stage.request_signoff(signoff_id=signoff_id_for(stage.id, round_number), stamp=stamp)
            signoff = SignOff.open(
                stage_id=stage.id, round_number=round_number, required_signers=[], stamp=stamp
            )
            touched.append(stage)
        assert signoff is not None
        # A new link for the address revokes its old one (request_external): an earlier
        # package email still waiting in the outbox (quiet hours, the cap) would carry a dead
        # link, so it is withdrawn in the same save.
        superseded = self._waiting_package_email(signoff, recipient)
        if superseded is not None:
            superseded.cancel(reason="superseded by a newer sign-off package", stamp=stamp)
            touched.append(superseded)
        # As invite_external_signer, the round's id prefixes the token and only its hash is
        # kept; the token itself is derived from the link key (application.email_links), so
        # the email stores a placeholder and the outbox fills the same link on every send.
        request_id = uuid4()
        link = SigningLink(signoff_id=signoff.id, request_id=request_id)
        links = EmailLinks.from_config(self.config)
        token = links.signing_token(link, recipient)
        expires_at = stamp.at + ttl
        signoff.request_external(
            request_id=request_id,
            email=recipient,
            token_hash=hash_token(token),
            expires_at=expires_at,
            stamp=stamp,
        )
        signing_url = links.signing_url(link, recipient)
        email_id = package_email_id(
            stamp.org_id, project.id, stage.id, recipient, ctx.correlation_id
        )
        quota, org_quota = self._package_quota(email_id, stamp)
        rendered = render_email(
            TEMPLATE,
            package.context(
                signing_url=link_placeholder(LinkName.SIGNING_URL), expires_at=expires_at
            ),
        )
        email = Email.queue(
            email_id=email_id,
            kind=EmailKind.SIGNOFF_PACKAGE,
            to=recipient,
            subject=(
                f"Sign-off requested: {_cut(project.name, MAX_SUBJECT_TITLE_CHARS)}"
                f" \u2013 {_cut(stage.title, MAX_SUBJECT_TITLE_CHARS)}"
            ),
            text=rendered.text,
            html=rendered.html,
            mail_domain=self.config.mail_domain,
            stamp=stamp,
            links={LinkName.SIGNING_URL: link},
            ref=f"stage:{stage.id}",
        )
        signoff.record_package_sent(
            request_id=request_id,
            email_id=email_id,
            document_ids=[d.id for d in package.documents],
            raid_item_ids=[i.id for i in package.items],
            message_chars=len(package.message),
            stamp=stamp,
        )
        touched += [signoff, email, quota, org_quota]
        position = self._commit(*touched)
        return SentPackage(
            id=signoff.id,
            position=position,
            request_id=request_id,
            email_id=email_id,
            token=token,
            signing_url=signing_url,
            expires_at=expires_at,
            opened_round=opened,
        )

    # Internals -------------------------------------------------------------------------

    def _package_quota(self, email_id: UUID, stamp: Stamp) -> tuple[PackageQuota, OrgPackageQuota]:
        """The project's and the org's package counts for the org-local day, with this email
        counted in both (saved in the send's one commit), or a `PackageCapReachedError`
        (`config.signoff_package_daily_cap`) / `OrgPackageCapReachedError`
        (`config.signoff_package_org_daily_cap`: a pm may create projects)."""
        assert stamp.project_id is not None
        org = self._find(Org, stamp.org_id, for_update=False)
        zone = ZoneInfo("UTC" if org is None else org.timezone)
        day = local_day(stamp.at, zone)
        resets_at = next_local_midnight(stamp.at, zone)
        quota = self._find(PackageQuota, package_quota_id(stamp.project_id, day))
        if quota is None or quota.org_id != stamp.org_id:
            quota = PackageQuota.open(day=day, stamp=stamp)
        quota.count(
            email_id=email_id,
            cap=self.config.signoff_package_daily_cap,
            resets_at=resets_at,
            stamp=stamp,
        )
        org_quota = self._find(OrgPackageQuota, org_package_quota_id(stamp.org_id, day))
        if org_quota is None or org_quota.org_id != stamp.org_id:
            org_quota = OrgPackageQuota.open(day=day, stamp=stamp)
        org_quota.count(
            email_id=email_id,
            cap=self.config.signoff_package_org_daily_cap,
            resets_at=resets_at,
            stamp=stamp,
        )
        return quota, org_quota

    def _waiting_package_email(self, signoff: SignOff, recipient: str) -> Email | None:
        """The undelivered package email sent with the address's pending link, if any."""
        previous = signoff.pending_external(recipient)
        if previous is None:
            return None
        # The round's own events (a few per signer): PackageSent names the email of a link.
        for event in self.repository.event_store.get(signoff.id):
            if isinstance(event, SignOff.PackageSent) and event.request_id == previous.request_id:
                email = self._find(Email, event.email_id)
                return None if email is None or email.final else email
        return None

    def _stage(self, project: Project, request: PackageRequest) -> Stage:
        # The caller's texts are checked before any lookup: bad input is a 422 whatever else.
        _message(request.message)
        if request.recipient is not None:
            normalise_address(request.recipient)
        return self._child(Stage, request.stage_id, project, "stage")

    def _package(self, project: Project, stage: Stage, request: PackageRequest) -> Package:
        message = _message(request.message)
        recipient = None if request.recipient is None else normalise_address(request.recipient)
        documents = [
            self._document(project, artifact_id)
            for artifact_id in _unique(request.document_ids, limit=MAX_DOCUMENTS, what="documents")
        ]
        items = [
            self._item(project, item_id)
            for item_id in _unique(request.raid_item_ids, limit=MAX_RAID_ITEMS, what="RAID items")
        ]
        return Package(
            project_id=project.id,
            project_code=project.code,
            project_name=project.name,
            stage_id=stage.id,
            stage_title=stage.title,
            stage_state=stage.state.value,
            message=message,
            recipient=recipient,
            documents=tuple(documents),
            items=tuple(items),
            generated_at=self.clock.now(),
        )

    def _document(self, project: Project, artifact_id: UUID) -> PackageDocument:
        artifact = self._find(Artifact, artifact_id, for_update=False)
        if artifact is None or artifact.project_id != project.id or artifact.deleted:
            raise NotFoundError("document not found", artifact_id=artifact_id)
        return PackageDocument(
            id=artifact.id,
            name=artifact.name,
            mime=artifact.mime,
            size=artifact.size,
            sha256=artifact.sha256,
            blob_key=artifact.blob_key,
            has_content=artifact.ingestion != IngestionState.NO_CONTENT,
        )

    def _item(self, project: Project, item_id: UUID) -> PackageItem:
        item = self._find(RaidItem, item_id, for_update=False)
        if item is None or item.project_id != project.id:
            raise NotFoundError("RAID item not found", item_id=item_id)
        return PackageItem(
            id=item.id,
            kind=item.kind,
            title=item.title,
            description=_cut(item.description, MAX_DESCRIPTION_CHARS),
            status=item.status.value,
            severity=None if item.severity is None else item.severity.value,
            owner=item.owner,
            due_date=item.due_date,
            decided_by=item.decided_by,
        )
