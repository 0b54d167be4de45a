"""Sign-off: one review round of a stage, with internal signatures and external signer links."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.addresses import check_address
from domain.base import TeaimAggregate
from domain.errors import (
    InvalidValueError,
    NotFoundError,
    PermissionDeniedError,
    RuleViolationError,
    TokenGoneError,
)
from domain.stage import validate_reason
from domain.stamps import Stamp
from domain.text import check_line

# Live external links (pending, not expired) one round may hold at once: each is a signer the
# round waits for and an address mailed under the org's name, so a round is not a mailing list.
MAX_LIVE_EXTERNAL = 10


class SignOffStatus(StrEnum):
    """Where a sign-off round stands."""

    OPEN = "open"
    COMPLETED = "completed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


class Decision(StrEnum):
    """What a signer decided."""

    SIGNED = "signed"
    REJECTED = "rejected"


class ExternalStatus(StrEnum):
    """Life of one external signer link."""

    PENDING = "pending"
    USED = "used"
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class Signature:
    """A recorded decision by one signer, with where it came from."""

    signer: str
    external: bool
    name: str
    decision: Decision
    comment: str
    at: datetime
    ip: str | None
    user_agent: str | None


@dataclass(frozen=True, slots=True)
class ExternalRequest:
    """An external signer's one-time link; only the token's hash is ever kept."""

    request_id: UUID
    email: str
    token_hash: str
    expires_at: datetime
    status: ExternalStatus


def signoff_id_for(stage_id: UUID, round_number: int) -> UUID:
    """Deterministic id per stage round, so a duplicated request conflicts instead of forking."""
    return uuid5(NAMESPACE_URL, f"teaim:stage:{stage_id}:signoff:{round_number}")


def hash_token(token: str) -> str:
    """The stored form of a signing token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def validate_email(email: str) -> str:
    """A normalised email address (lower-cased, trimmed) under the one strict address rule
    (domain.addresses)."""
    return check_address(email)


def internal_key(user_id: str) -> str:
    """Signer key of a member."""
    return f"user:{user_id}"


def external_key(email: str) -> str:
    """Signer key of an external signer."""
    return f"email:{email}"


class SignOff(TeaimAggregate):
    """One sign-off round: who must sign, who did, and the external links issued for it."""

    project_id: UUID = field(init=False)
    stage_id: UUID = field(init=False)
    round: int = field(init=False)
    required: list[str] = field(init=False)
    signatures: dict[str, Signature] = field(init=False)
    external: dict[str, ExternalRequest] = field(init=False)
    status: SignOffStatus = field(init=False)

    class Created(TeaimAggregate.Created):
        stage_id: UUID
        round: int
        required_signers: list[str]

        def apply(self, signoff: SignOff) -> None:
            assert self.project_id is not None
            signoff.project_id = self.project_id
            signoff.stage_id = self.stage_id
            signoff.round = self.round
            signoff.required = [internal_key(u) for u in self.required_signers]
            signoff.signatures = {}
            signoff.external = {}
            signoff.status = SignOffStatus.OPEN

    class Signed(TeaimAggregate.Event):
        signer: str
        external: bool
        name: str
        comment: str
        ip: str | None
        user_agent: str | None
        request_id: UUID | None

        def apply(self, signoff: SignOff) -> None:
            signoff._record(self, Decision.SIGNED, self.comment)

    class SignatureRejected(TeaimAggregate.Event):
        signer: str
        external: bool
        name: str
        reason: str
        ip: str | None
        user_agent: str | None
        request_id: UUID | None

        def apply(self, signoff: SignOff) -> None:
            signoff._record(self, Decision.REJECTED, self.reason)
            signoff.status = SignOffStatus.REJECTED

    class Completed(TeaimAggregate.Event):
        def apply(self, signoff: SignOff) -> None:
            signoff.status = SignOffStatus.COMPLETED

    class Cancelled(TeaimAggregate.Event):
        reason: str

        def apply(self, signoff: SignOff) -> None:
            signoff.status = SignOffStatus.CANCELLED

    class ExternalSignerRequested(TeaimAggregate.Event):
        request_id: UUID
        email: str
        token_hash: str
        expires_at: datetime

        def apply(self, signoff: SignOff) -> None:
            signoff.external[str(self.request_id)] = ExternalRequest(
                request_id=self.request_id,
                email=self.email,
                token_hash=self.token_hash,
                expires_at=self.expires_at,
                status=ExternalStatus.PENDING,
            )

    class ExternalSignerRevoked(TeaimAggregate.Event):
        request_id: UUID

        def apply(self, signoff: SignOff) -> None:
            key = str(self.request_id)
            signoff.external[key] = replace(signoff.external[key], status=ExternalStatus.REVOKED)

    class PackageSent(TeaimAggregate.Event):
        """A sign-off package was emailed with the link of `request_id` (never its token)."""

        request_id: UUID
        recipient: str
        email_id: UUID
        document_ids: list[str]
        raid_item_ids: list[str]
        message_chars: int

        def apply(self, signoff: SignOff) -> None:
            pass  # a record for the audit feed: the round's state is unchanged

    @classmethod
    def open(
        cls, *, stage_id: UUID, round_number: int, required_signers: list[str], stamp: Stamp
    ) -> SignOff:
        """Open round `round_number` of a stage's sign-off."""
        unique = sorted(set(required_signers))
        signoff: SignOff = cls._create_stamped(
            cls.Created,
            id=signoff_id_for(stage_id, round_number),
            stamp=stamp,
            stage_id=stage_id,
            round=round_number,
            required_signers=unique,
        )
        return signoff

    # Queries ---------------------------------------------------------------------------

    def is_complete(self) -> bool:
        """Every required signer signed; with nobody named, one signature suffices."""
        signed = {k for k, s in self.signatures.items() if s.decision is Decision.SIGNED}
        required = self.named()
        if not required:
            return bool(signed)
        return required <= signed

    def named(self) -> set[str]:
        """The signers the round names: its internal signers and its external link holders
        (every link not revoked). Empty: the round names nobody."""
        return set(self.required) | {
            external_key(r.email)
            for r in self.external.values()
            if r.status is not ExternalStatus.REVOKED
        }

    def pending_external(self, email: str) -> ExternalRequest | None:
        """The live link for an email, if one is pending."""
        for request in self.external.values():
            if request.email == email and request.status is ExternalStatus.PENDING:
                return request
        return None

    def find_by_token(self, token_hash: str) -> ExternalRequest:
        """The external request a token belongs to."""
        for request in self.external.values():
            if request.token_hash == token_hash:
                return request
        raise NotFoundError("signing link not found", signoff_id=self.id)

    def usable_request(self, token_hash: str, *, now: datetime) -> ExternalRequest:
        """The request for a token, if it may still be used right now (else 410)."""
        request = self.find_by_token(token_hash)
        if request.status is ExternalStatus.USED:
            raise TokenGoneError("this signing link has already been used", signoff_id=self.id)
        if request.status is ExternalStatus.REVOKED:
            raise TokenGoneError("this signing link was revoked", signoff_id=self.id)
        if now >= request.expires_at:
            raise TokenGoneError("this signing link has expired", signoff_id=self.id)
        if self.status is not SignOffStatus.OPEN:
            raise TokenGoneError(
                f"this sign-off is no longer open (it is {self.status.value})", signoff_id=self.id
            )
        return request

    # Commands --------------------------------------------------------------------------

    def sign(
        self,
        *,
        user_id: str,
        comment: str,
        ip: str | None,
        user_agent: str | None,
        stamp: Stamp,
    ) -> None:
        """A member signs: a named signer, or anyone allowed to sign when nobody was named.

        The role matrix (the sign permission) is checked by the caller; this checks the round.
        """
        key = internal_key(user_id)
        self._require_may_decide(key)
        self._require_named(key)
        self._trigger(
            self.Signed,
            stamp,
            signer=key,
            external=False,
            name=user_id,
            comment=validate_reason(comment, required=False),
            ip=ip,
            user_agent=user_agent,
            request_id=None,
        )
        self._complete_if_done(stamp)

    def reject(
        self,
        *,
        user_id: str,
        reason: str,
        ip: str | None,
        user_agent: str | None,
        stamp: Stamp,
    ) -> None:
        """A member rejects the round with a reason (the same members as may sign it)."""
        key = internal_key(user_id)
        self._require_may_decide(key)
        self._require_named(key)
        self._trigger(
            self.SignatureRejected,
            stamp,
            signer=key,
            external=False,
            name=user_id,
            reason=validate_reason(reason, required=True),
            ip=ip,
            user_agent=user_agent,
            request_id=None,
        )

    def request_external(
        self,
        *,
        request_id: UUID,
        email: str,
        token_hash: str,
        expires_at: datetime,
        stamp: Stamp,
    ) -> None:
        """Issue a link for an external signer; a new link for the same email revokes the old."""
        self._require_open()
        address = validate_email(email)
        if external_key(address) in self.signatures:
            raise RuleViolationError("this signer has already decided", signoff_id=self.id)
        if expires_at <= stamp.at:
            raise InvalidValueError("expiry must be in the future")
        previous = self.pending_external(address)
        # The address's own live link is replaced, not added: it does not count.
        live = sum(
            1
            for r in self.external.values()
            if r.status is ExternalStatus.PENDING and r.expires_at > stamp.at and r is not previous
        )
        if live >= MAX_LIVE_EXTERNAL:
            raise RuleViolationError(
                f"a sign-off round holds at most {MAX_LIVE_EXTERNAL} live external links;"
                " revoke one first",
                signoff_id=self.id,
            )
        if previous is not None:
            self._trigger(self.ExternalSignerRevoked, stamp, request_id=previous.request_id)
        self._trigger(
            self.ExternalSignerRequested,
            stamp,
            request_id=request_id,
            email=address,
            token_hash=token_hash,
            expires_at=expires_at,
        )

    def record_package_sent(
        self,
        *,
        request_id: UUID,
        email_id: UUID,
        document_ids: list[UUID],
        raid_item_ids: list[UUID],
        message_chars: int,
        stamp: Stamp,
    ) -> None:
        """Record that a package went out with the pending link `request_id`."""
        request = self.external.get(str(request_id))
        if request is None or request.status is not ExternalStatus.PENDING:
            raise RuleViolationError(
                "a package is sent with a pending external link", request_id=request_id
            )
        self._trigger(
            self.PackageSent,
            stamp,
            request_id=request_id,
            recipient=request.email,
            email_id=email_id,
            document_ids=[str(i) for i in document_ids],
            raid_item_ids=[str(i) for i in raid_item_ids],
            message_chars=message_chars,
        )

    def revoke_external(self, *, request_id: UUID, stamp: Stamp) -> None:
        """Withdraw a pending external link."""
        request = self.external.get(str(request_id))
        if request is None:
            raise NotFoundError("external signer request not found", request_id=request_id)
        if request.status is not ExternalStatus.PENDING:
            raise RuleViolationError(
                f"external request is {request.status.value}, not pending", request_id=request_id
            )
        self._trigger(self.ExternalSignerRevoked, stamp, request_id=request_id)
        self._complete_if_done(stamp)

    def sign_external(
        self,
        *,
        token_hash: str,
        name: str,
        comment: str,
        ip: str | None,
        user_agent: str | None,
        stamp: Stamp,
    ) -> None:
        """An external signer signs with their link."""
        request = self.usable_request(token_hash, now=stamp.at)
        key = external_key(request.email)
        self._require_may_decide(key)
        self._trigger(
            self.Signed,
            stamp,
            signer=key,
            external=True,
            name=validate_signer_name(name),
            comment=validate_reason(comment, required=False),
            ip=ip,
            user_agent=user_agent,
            request_id=request.request_id,
        )
        self._complete_if_done(stamp)

    def reject_external(
        self,
        *,
        token_hash: str,
        name: str,
        reason: str,
        ip: str | None,
        user_agent: str | None,
        stamp: Stamp,
    ) -> None:
        """An external signer rejects with their link."""
        request = self.usable_request(token_hash, now=stamp.at)
        key = external_key(request.email)
        self._require_may_decide(key)
        self._trigger(
            self.SignatureRejected,
            stamp,
            signer=key,
            external=True,
            name=validate_signer_name(name),
            reason=validate_reason(reason, required=True),
            ip=ip,
            user_agent=user_agent,
            request_id=request.request_id,
        )

    def cancel(self, *, reason: str, stamp: Stamp) -> None:
        """Close an open round without a decision (the stage was reopened)."""
        self._require_open()
        self._trigger(self.Cancelled, stamp, reason=reason)

    # Internals -------------------------------------------------------------------------

    def _record(
        self, event: SignOff.Signed | SignOff.SignatureRejected, decision: Decision, text: str
    ) -> None:
        self.signatures[event.signer] = Signature(
            signer=event.signer,
            external=event.external,
            name=event.name,
            decision=decision,
            comment=text,
            at=event.timestamp,
            ip=event.ip,
            user_agent=event.user_agent,
        )
        if event.request_id is not None:
            key = str(event.request_id)
            self.external[key] = replace(self.external[key], status=ExternalStatus.USED)

    def _require_open(self) -> None:
        if self.status is not SignOffStatus.OPEN:
            raise RuleViolationError(
                f"sign-off is {self.status.value}, not open", signoff_id=self.id
            )

    def _require_named(self, signer_key: str) -> None:
        # A round that names anyone (internal signers or external link holders) is theirs:
        # anyone else holding the sign permission could otherwise veto it with a rejection,
        # or sign in a client's place. A round naming nobody may be decided by any of them.
        named = self.named()
        if named and signer_key not in named:
            raise PermissionDeniedError(
                "only the round's named signers may sign or reject it", signoff_id=self.id
            )

    def _require_may_decide(self, signer_key: str) -> None:
        if signer_key in self.signatures:
            previous = self.signatures[signer_key].decision
            raise RuleViolationError(
                f"this signer has already {previous.value}; nobody decides twice",
                signoff_id=self.id,
            )
        self._require_open()

    def _complete_if_done(self, stamp: Stamp) -> None:
        if self.status is SignOffStatus.OPEN and self.is_complete():
            self._trigger(self.Completed, stamp)


def validate_signer_name(name: str) -> str:
    """The name an external signer signs with."""
    cleaned = check_line(name, what="signer name").strip()
    if not cleaned or len(cleaned) > 200:
        raise InvalidValueError("signer name must be 1-200 characters")
    return cleaned
