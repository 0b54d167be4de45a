"""Stage and sign-off commands, including external signers with one-time links."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID, uuid4

from application.base import TeaimBase
from application.context import CommandContext, PublicContext
from application.results import CommandResult, IssuedLink
from domain.errors import (
    InvalidValueError,
    NotFoundError,
    PermissionDeniedError,
    RuleViolationError,
)
from domain.project import Project
from domain.roles import Permission
from domain.signoff import (
    Decision,
    ExternalRequest,
    SignOff,
    SignOffStatus,
    hash_token,
    signoff_id_for,
)
from domain.stage import Stage
from domain.stamps import Stamp


@dataclass(frozen=True, slots=True)
class SigningView:
    """What an external signer sees before deciding."""

    project: Project
    stage: Stage
    signoff: SignOff
    request: ExternalRequest


class StageCommands(TeaimBase):
    """Stages and their sign-off rounds."""

    def create_stage(
        self, *, ctx: CommandContext, project_id: UUID, title: str, order: int
    ) -> CommandResult:
        """Add a draft stage to a project."""
        project, _ = self._guard_project(ctx, project_id, Permission.WRITE, action="stage.create")
        project.require_writable()
        stage = Stage.create(
            stage_id=uuid4(), title=title, order=order, stamp=self._stamp(ctx, project_id)
        )
        return CommandResult(id=stage.id, position=self._commit(stage))

    def get_stage(self, *, ctx: CommandContext, project_id: UUID, stage_id: UUID) -> Stage:
        """A stage of a project the caller may read."""
        project, _ = self._guard_project(ctx, project_id, Permission.READ, action="stage.read")
        return self._child(Stage, stage_id, project, "stage")

    def get_signoff(
        self, *, ctx: CommandContext, project_id: UUID, stage_id: UUID
    ) -> SignOff | None:
        """The stage's current (latest) sign-off round, if one was ever requested."""
        project, _ = self._guard_project(ctx, project_id, Permission.READ, action="signoff.read")
        stage = self._child(Stage, stage_id, project, "stage")
        return None if stage.signoff_id is None else self._find(SignOff, stage.signoff_id)

    def rename_stage(
        self, *, ctx: CommandContext, project_id: UUID, stage_id: UUID, title: str
    ) -> CommandResult:
        """Retitle a stage."""
        project, _ = self._guard_project(ctx, project_id, Permission.WRITE, action="stage.rename")
        project.require_writable()
        stage = self._child(Stage, stage_id, project, "stage")
        stage.rename(title=title, stamp=self._stamp(ctx, project_id))
        return CommandResult(id=stage.id, position=self._commit(stage))

    def request_signoff(
        self,
        *,
        ctx: CommandContext,
        project_id: UUID,
        stage_id: UUID,
        signers: list[str],
    ) -> CommandResult:
        """Submit a draft stage for sign-off by the named members (or any one signer)."""
        project, _ = self._guard_project(
            ctx, project_id, Permission.REQUEST_SIGNOFF, action="stage.signoff.request"
        )
        project.require_writable()
        stage = self._child(Stage, stage_id, project, "stage")
        for user_id in signers:
            membership = project.membership(user_id)
            if membership is None or not membership.allows(Permission.SIGN):
                raise InvalidValueError(
                    "every named signer must be a member allowed to sign", user_id=user_id
                )
        stamp = self._stamp(ctx, project_id)
        round_number = stage.next_signoff_round()
        stage.request_signoff(signoff_id=signoff_id_for(stage.id, round_number), stamp=stamp)
        signoff = SignOff.open(
            stage_id=stage.id, round_number=round_number, required_signers=signers, stamp=stamp
        )
        return CommandResult(id=signoff.id, position=self._commit(stage, signoff))

    def sign_stage(
        self, *, ctx: CommandContext, project_id: UUID, stage_id: UUID, comment: str = ""
    ) -> CommandResult:
        """Sign the stage's open round; the last required signature signs the stage off."""
        project, _ = self._guard_project(ctx, project_id, Permission.SIGN, action="stage.sign")
        project.require_writable()
        stage, signoff = self._open_round(project, stage_id)
        stamp = self._stamp(ctx, project_id)
        with self._named_signers_only(ctx, project_id, action="stage.sign"):
            signoff.sign(
                user_id=ctx.principal.user_id,
                comment=comment,
                ip=ctx.ip,
                user_agent=ctx.user_agent,
                stamp=stamp,
            )
        self._settle_stage(stage, signoff, stamp)
        return CommandResult(id=stage.id, position=self._commit(signoff, stage))

    def reject_stage(
        self, *, ctx: CommandContext, project_id: UUID, stage_id: UUID, reason: str
    ) -> CommandResult:
        """Reject the stage's open round with a reason."""
        project, _ = self._guard_project(ctx, project_id, Permission.SIGN, action="stage.reject")
        project.require_writable()
        stage, signoff = self._open_round(project, stage_id)
        stamp = self._stamp(ctx, project_id)
        with self._named_signers_only(ctx, project_id, action="stage.reject"):
            signoff.reject(
                user_id=ctx.principal.user_id,
                reason=reason,
                ip=ctx.ip,
                user_agent=ctx.user_agent,
                stamp=stamp,
            )
        self._settle_stage(stage, signoff, stamp)
        return CommandResult(id=stage.id, position=self._commit(signoff, stage))

    def reopen_stage(
        self, *, ctx: CommandContext, project_id: UUID, stage_id: UUID, reason: str = ""
    ) -> CommandResult:
        """Send a stage back to draft; an open round is cancelled and its links die."""
        project, _ = self._guard_project(
            ctx, project_id, Permission.REOPEN_STAGE, action="stage.reopen"
        )
        project.require_writable()
        stage = self._child(Stage, stage_id, project, "stage")
        stamp = self._stamp(ctx, project_id)
        stage.reopen(reason=reason, stamp=stamp)
        touched: list[Stage | SignOff] = [stage]
        if stage.signoff_id is not None:
            signoff = self._find(SignOff, stage.signoff_id)
            if signoff is not None and signoff.status is SignOffStatus.OPEN:
                signoff.cancel(reason=reason or "stage reopened", stamp=stamp)
                touched.append(signoff)
        return CommandResult(id=stage.id, position=self._commit(*touched))

    def invite_external_signer(
        self,
        *,
        ctx: CommandContext,
        project_id: UUID,
        stage_id: UUID,
        email: str,
        expires_in: timedelta | None = None,
    ) -> IssuedLink:
        """Issue a one-time signing link bound to one email and this stage's open round."""
        project, _ = self._guard_project(
            ctx, project_id, Permission.INVITE_EXTERNAL_SIGNER, action="stage.signer.invite"
        )
        project.require_writable()
        _, signoff = self._open_round(project, stage_id)
        # Only an omitted lifetime takes the default: an explicit zero must be refused, not
        # silently turned into a 7-day link.
        ttl = self.config.signing_link_ttl if expires_in is None else expires_in
        if not timedelta(minutes=5) <= ttl <= self.config.signing_link_max_ttl:
            raise InvalidValueError(
                f"link lifetime must be between 5 minutes and {self.config.signing_link_max_ttl}"
            )
        stamp = self._stamp(ctx, project_id)
        # The signoff id prefixes the secret so a link finds its round without a lookup table;
        # only the hash of the whole token is stored.
        token = f"{signoff.id.hex}.{self.secrets.token(self.config.signing_token_bytes)}"
        request_id = uuid4()
        expires_at = stamp.at + ttl
        signoff.request_external(
            request_id=request_id,
            email=email,
            token_hash=hash_token(token),
            expires_at=expires_at,
            stamp=stamp,
        )
        position = self._commit(signoff)
        return IssuedLink(
            id=signoff.id,
            position=position,
            request_id=request_id,
            token=token,
            expires_at=expires_at,
        )

    def revoke_external_signer(
        self, *, ctx: CommandContext, project_id: UUID, stage_id: UUID, request_id: UUID
    ) -> CommandResult:
        """Withdraw an external signer's pending link."""
        project, _ = self._guard_project(
            ctx, project_id, Permission.INVITE_EXTERNAL_SIGNER, action="stage.signer.revoke"
        )
        project.require_writable()
        stage, signoff = self._open_round(project, stage_id)
        stamp = self._stamp(ctx, project_id)
        signoff.revoke_external(request_id=request_id, stamp=stamp)
        self._settle_stage(stage, signoff, stamp)
        return CommandResult(id=signoff.id, position=self._commit(signoff, stage))

    # External signers (no account: the token is the credential) ------------------------

    def view_signing_link(self, *, token: str, now_ctx: PublicContext) -> SigningView:
        """What a link's holder is asked to sign (refuses used, revoked or expired links)."""
        signoff = self._signoff_for_token(token)
        request = signoff.usable_request(hash_token(token), now=self.clock.now())
        stage = self._find(Stage, signoff.stage_id)
        project = self._find(Project, signoff.project_id) if stage else None
        if stage is None or project is None:
            raise NotFoundError("signing link not found")
        del now_ctx  # the view is a read; nothing to stamp
        return SigningView(project=project, stage=stage, signoff=signoff, request=request)

    def sign_with_link(
        self, *, token: str, name: str, comment: str, ctx: PublicContext
    ) -> CommandResult:
        """An external signer signs; the link is spent."""
        signoff, stage, stamp = self._external_round(token, ctx)
        signoff.sign_external(
            token_hash=hash_token(token),
            name=name,
            comment=comment,
            ip=ctx.ip,
            user_agent=ctx.user_agent,
            stamp=stamp,
        )
        self._settle_stage(stage, signoff, stamp)
        return CommandResult(id=stage.id, position=self._commit(signoff, stage))

    def reject_with_link(
        self, *, token: str, name: str, reason: str, ctx: PublicContext
    ) -> CommandResult:
        """An external signer rejects; the link is spent."""
        signoff, stage, stamp = self._external_round(token, ctx)
        signoff.reject_external(
            token_hash=hash_token(token),
            name=name,
            reason=reason,
            ip=ctx.ip,
            user_agent=ctx.user_agent,
            stamp=stamp,
        )
        self._settle_stage(stage, signoff, stamp)
        return CommandResult(id=stage.id, position=self._commit(signoff, stage))

    # Internals -------------------------------------------------------------------------

    @contextmanager
    def _named_signers_only(
        self, ctx: CommandContext, project_id: UUID, *, action: str
    ) -> Iterator[None]:
        """Record a member's attempt to decide a round that names other signers (a 403)."""
        try:
            yield
        except PermissionDeniedError:
            self._deny(
                ctx,
                action=action,
                target_kind="project",
                target_id=project_id,
                reason="not_a_named_signer",
            )
            raise

    def _open_round(self, project: Project, stage_id: UUID) -> tuple[Stage, SignOff]:
        stage = self._child(Stage, stage_id, project, "stage")
        signoff = None if stage.signoff_id is None else self._find(SignOff, stage.signoff_id)
        if signoff is None or signoff.status is not SignOffStatus.OPEN:
            raise RuleViolationError(
                f"stage has no open sign-off (it is {stage.state.value})", stage_id=stage_id
            )
        return stage, signoff

    def _settle_stage(self, stage: Stage, signoff: SignOff, stamp: Stamp) -> None:
        """Carry a round's outcome over to its stage."""
        if signoff.status is SignOffStatus.COMPLETED:
            stage.mark_signed_off(stamp=stamp)
        elif signoff.status is SignOffStatus.REJECTED:
            rejections = [s for s in signoff.signatures.values() if s.decision is Decision.REJECTED]
            reason = rejections[-1].comment if rejections else ""
            stage.mark_rejected(reason=reason, stamp=stamp)

    def _signoff_for_token(self, token: str) -> SignOff:
        prefix, _, secret = token.partition(".")
        try:
            signoff_id = UUID(hex=prefix)
        except ValueError:
            raise NotFoundError("signing link not found") from None
        signoff = self._find(SignOff, signoff_id) if secret else None
        if signoff is None:
            raise NotFoundError("signing link not found")
        return signoff

    def _external_round(self, token: str, ctx: PublicContext) -> tuple[SignOff, Stage, Stamp]:
        signoff = self._signoff_for_token(token)
        now = self.clock.now()
        request = signoff.usable_request(hash_token(token), now=now)
        stage = self._find(Stage, signoff.stage_id)
        project = self._find(Project, signoff.project_id) if stage else None
        if stage is None or project is None:
            raise NotFoundError("signing link not found")
        project.require_writable()
        stamp = Stamp(
            org_id=signoff.org_id,
            project_id=project.id,
            actor=f"external:{request.email}",
            correlation_id=ctx.correlation_id,
            at=now,
        )
        return signoff, stage, stamp
