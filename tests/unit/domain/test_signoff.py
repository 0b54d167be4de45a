"""Sign-off rules: who may sign, completion, rejection, and external one-time links."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID, uuid4

import pytest

from application.app import Teaim
from application.context import CommandContext, PublicContext
from application.results import IssuedLink
from domain.errors import (
    InvalidValueError,
    NotFoundError,
    PermissionDeniedError,
    RuleViolationError,
    TokenGoneError,
)
from domain.roles import Role
from domain.signoff import (
    Decision,
    ExternalStatus,
    SignOff,
    SignOffStatus,
    external_key,
    hash_token,
    internal_key,
    signoff_id_for,
)
from domain.stage import StageState
from domain.stamps import Stamp
from tests.support.clocks import EPOCH
from tests.support.stored import denials, events, position, stored_bytes
from tests.unit.conftest import World, make_stamp

PUBLIC = PublicContext("cid-public", ip="203.0.113.7", user_agent="Mozilla/5.0 (signer)")


# Domain ---------------------------------------------------------------------------------


def open_round(required: list[str]) -> tuple[SignOff, Stamp]:
    stamp = make_stamp(project_id=uuid4())
    signoff = SignOff.open(stage_id=uuid4(), round_number=1, required_signers=required, stamp=stamp)
    return signoff, stamp


def status(signoff: SignOff) -> SignOffStatus:
    """The round's status (read through a call, so the type checker does not pin it)."""
    return signoff.status


def sign(signoff: SignOff, user_id: str, stamp: Stamp) -> None:
    signoff.sign(user_id=user_id, comment="", ip=None, user_agent=None, stamp=stamp)


def test_a_round_has_a_deterministic_id_and_deduplicated_signers() -> None:
    stamp = make_stamp(project_id=uuid4())
    stage_id = uuid4()
    signoff = SignOff.open(
        stage_id=stage_id, round_number=3, required_signers=["bob", "al", "bob"], stamp=stamp
    )
    assert signoff.id == signoff_id_for(stage_id, 3)
    assert signoff_id_for(stage_id, 3) != signoff_id_for(stage_id, 4)
    assert signoff.required == ["user:al", "user:bob"]
    assert signoff.status is SignOffStatus.OPEN


def test_the_round_completes_only_when_every_required_signer_signed() -> None:
    signoff, stamp = open_round(["al", "bob"])
    sign(signoff, "al", stamp)
    assert signoff.status is SignOffStatus.OPEN
    assert not signoff.is_complete()
    sign(signoff, "bob", stamp)
    assert status(signoff) is SignOffStatus.COMPLETED


@pytest.mark.parametrize("decision", ["sign", "reject"])
def test_a_member_not_named_can_neither_sign_nor_reject_a_named_round(decision: str) -> None:
    # A named round belongs to its signers: another holder of the sign permission could
    # otherwise veto it with a rejection.
    signoff, stamp = open_round(["al", "bob"])
    decide = signoff.sign if decision == "sign" else signoff.reject
    text = {"comment": ""} if decision == "sign" else {"reason": "veto"}
    with pytest.raises(PermissionDeniedError, match="only the round's named signers"):
        decide(user_id="eve", ip=None, user_agent=None, stamp=stamp, **text)
    assert signoff.signatures == {}
    assert signoff.status is SignOffStatus.OPEN
    assert not signoff.collect_events()[1:]  # nothing beyond the round's creation


def test_with_nobody_named_any_one_signature_completes() -> None:
    signoff, stamp = open_round([])
    assert not signoff.is_complete()
    sign(signoff, "al", stamp)
    assert signoff.status is SignOffStatus.COMPLETED


def test_nobody_signs_twice() -> None:
    signoff, stamp = open_round(["al", "bob"])
    sign(signoff, "al", stamp)
    with pytest.raises(
        RuleViolationError, match="this signer has already signed; nobody decides twice"
    ):
        sign(signoff, "al", stamp)


def test_no_reject_after_signing() -> None:
    signoff, stamp = open_round(["al", "bob"])
    sign(signoff, "al", stamp)
    with pytest.raises(
        RuleViolationError, match="this signer has already signed; nobody decides twice"
    ):
        signoff.reject(
            user_id="al", reason="changed my mind", ip=None, user_agent=None, stamp=stamp
        )
    assert signoff.signatures[internal_key("al")].decision is Decision.SIGNED


def test_no_reject_after_completion() -> None:
    signoff, stamp = open_round(["al"])
    sign(signoff, "al", stamp)
    with pytest.raises(RuleViolationError, match="sign-off is completed, not open"):
        signoff.reject(user_id="bob", reason="late", ip=None, user_agent=None, stamp=stamp)
    assert signoff.status is SignOffStatus.COMPLETED


def test_no_signature_after_a_rejection() -> None:
    signoff, stamp = open_round(["al", "bob"])
    signoff.reject(user_id="al", reason="no", ip=None, user_agent=None, stamp=stamp)
    assert signoff.status is SignOffStatus.REJECTED
    with pytest.raises(RuleViolationError, match="sign-off is rejected, not open"):
        sign(signoff, "bob", stamp)


def test_a_rejection_needs_a_reason() -> None:
    signoff, stamp = open_round(["al"])
    with pytest.raises(InvalidValueError, match="a reason is required"):
        signoff.reject(user_id="al", reason="  ", ip=None, user_agent=None, stamp=stamp)
    assert signoff.signatures == {}


def test_only_an_open_round_can_be_cancelled() -> None:
    signoff, stamp = open_round(["al"])
    signoff.cancel(reason="reopened", stamp=stamp)
    assert signoff.status is SignOffStatus.CANCELLED
    with pytest.raises(RuleViolationError, match="sign-off is cancelled, not open"):
        signoff.cancel(reason="again", stamp=stamp)
    with pytest.raises(RuleViolationError, match="sign-off is cancelled, not open"):
        sign(signoff, "al", stamp)


def test_an_invited_external_signer_becomes_required_until_revoked() -> None:
    signoff, stamp = open_round([])
    request_id = uuid4()
    signoff.request_external(
        request_id=request_id,
        email="Carol@Client.com ",
        token_hash=hash_token("t"),
        expires_at=EPOCH + timedelta(days=1),
        stamp=stamp,
    )
    assert signoff.external[str(request_id)].email == "carol@client.com"
    # Issue 7: the invitation names carol, so the round is hers; an unnamed member may no
    # longer sign it (this test used to let "al" sign while carol's link was live).
    with pytest.raises(PermissionDeniedError, match="only the round's named signers"):
        sign(signoff, "al", stamp)
    assert status(signoff) is SignOffStatus.OPEN  # carol has not signed yet
    signoff.revoke_external(request_id=request_id, stamp=stamp)
    assert status(signoff) is SignOffStatus.OPEN
    # Revoked, the round names nobody again: one signature by anyone allowed completes it.
    sign(signoff, "al", stamp)
    assert status(signoff) is SignOffStatus.COMPLETED


def test_a_package_is_recorded_only_with_a_pending_link_and_never_its_token() -> None:
    signoff, stamp = open_round([])
    with pytest.raises(RuleViolationError, match="pending external link"):
        signoff.record_package_sent(
            request_id=uuid4(),
            email_id=uuid4(),
            document_ids=[],
            raid_item_ids=[],
            message_chars=0,
            stamp=stamp,
        )
    request_id, email_id, document = uuid4(), uuid4(), uuid4()
    signoff.request_external(
        request_id=request_id,
        email="Carol@Client.com",
        token_hash=hash_token("secret-token"),
        expires_at=EPOCH + timedelta(days=1),
        stamp=stamp,
    )
    signoff.record_package_sent(
        request_id=request_id,
        email_id=email_id,
        document_ids=[document],
        raid_item_ids=[],
        message_chars=12,
        stamp=stamp,
    )
    sent = signoff.collect_events()[-1]
    assert isinstance(sent, SignOff.PackageSent)
    assert (sent.request_id, sent.recipient, sent.email_id) == (
        request_id,
        "carol@client.com",
        email_id,
    )
    assert sent.document_ids == [str(document)]
    assert "secret-token" not in repr(sent)
    assert hash_token("secret-token") not in repr(sent)
    assert status(signoff) is SignOffStatus.OPEN  # a record: the round is unchanged
    signoff.revoke_external(request_id=request_id, stamp=stamp)
    with pytest.raises(RuleViolationError, match="pending external link"):
        signoff.record_package_sent(
            request_id=request_id,
            email_id=email_id,
            document_ids=[],
            raid_item_ids=[],
            message_chars=0,
            stamp=stamp,
        )


@pytest.mark.parametrize("email", ["", "carol", "carol@", "@client.com", "a b@c.com", "c@d"])
def test_external_email_must_be_valid(email: str) -> None:
    signoff, stamp = open_round([])
    with pytest.raises(InvalidValueError, match="not a valid email address"):
        signoff.request_external(
            request_id=uuid4(),
            email=email,
            token_hash=hash_token("t"),
            expires_at=EPOCH + timedelta(days=1),
            stamp=stamp,
        )


def test_external_expiry_must_be_in_the_future() -> None:
    signoff, stamp = open_round([])
    with pytest.raises(InvalidValueError, match="expiry must be in the future"):
        signoff.request_external(
            request_id=uuid4(),
            email="c@client.com",
            token_hash=hash_token("t"),
            expires_at=stamp.at,
            stamp=stamp,
        )


# Application ----------------------------------------------------------------------------


@dataclass
class Round:
    """A stage of the world's project with an open sign-off round."""

    world: World
    stage_id: UUID

    @property
    def app(self) -> Teaim:
        return self.world.app

    def sign(self, ctx: CommandContext, comment: str = "") -> None:
        self.app.sign_stage(
            ctx=ctx, project_id=self.world.project_id, stage_id=self.stage_id, comment=comment
        )

    def reject(self, ctx: CommandContext, reason: str = "no") -> None:
        self.app.reject_stage(
            ctx=ctx, project_id=self.world.project_id, stage_id=self.stage_id, reason=reason
        )

    def invite(self, email: str = "carol@client.com", **kwargs: timedelta) -> IssuedLink:
        return self.app.invite_external_signer(
            ctx=self.world.alice,
            project_id=self.world.project_id,
            stage_id=self.stage_id,
            email=email,
            **kwargs,
        )

    def reopen(self) -> None:
        self.app.reopen_stage(
            ctx=self.world.alice, project_id=self.world.project_id, stage_id=self.stage_id
        )

    def request(self, signers: list[str]) -> None:
        self.app.request_signoff(
            ctx=self.world.alice,
            project_id=self.world.project_id,
            stage_id=self.stage_id,
            signers=signers,
        )

    def state(self) -> StageState:
        stage = self.app.get_stage(
            ctx=self.world.alice, project_id=self.world.project_id, stage_id=self.stage_id
        )
        return stage.state

    def signoff(self) -> SignOff:
        signoff = self.app.get_signoff(
            ctx=self.world.alice, project_id=self.world.project_id, stage_id=self.stage_id
        )
        assert signoff is not None
        return signoff


def start_round(world: World, signers: list[str]) -> Round:
    stage_id = world.app.create_stage(
        ctx=world.alice, project_id=world.project_id, title="Discovery", order=1
    ).id
    review = Round(world, stage_id)
    review.request(signers)
    return review


def test_a_member_without_sign_permission_cannot_sign(world: World) -> None:
    bob = world.member("bob", Role.MEMBER, signer=False)
    review = start_round(world, [])
    before = position(world.app)
    with pytest.raises(PermissionDeniedError, match=r"your role \(member\) does not allow sign"):
        review.sign(bob)
    with pytest.raises(PermissionDeniedError, match=r"your role \(member\) does not allow sign"):
        review.reject(bob)
    assert [d.reason for d in denials(world.app, before)] == ["missing_permission:sign"] * 2
    assert review.signoff().signatures == {}


@pytest.mark.parametrize("role", [Role.MEMBER, Role.GUEST])
def test_the_signer_toggle_lets_any_role_sign(world: World, role: Role) -> None:
    signer = world.member("sam", role, signer=True)
    review = start_round(world, ["sam"])
    review.sign(signer)
    assert review.state() is StageState.SIGNED_OFF


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN, Role.PM, Role.LEAD])
def test_signing_roles_sign_without_the_toggle(world: World, role: Role) -> None:
    ctx = world.member("sam", role, signer=False)
    review = start_round(world, [])
    review.sign(ctx)
    assert review.state() is StageState.SIGNED_OFF


def test_a_non_member_cannot_sign_and_learns_nothing(world: World) -> None:
    review = start_round(world, [])
    with pytest.raises(NotFoundError, match="project not found"):
        review.sign(world.ctx("mallory"))


def test_named_signers_must_be_members_allowed_to_sign(world: World) -> None:
    world.member("bob", Role.MEMBER, signer=False)
    stage_id = world.app.create_stage(
        ctx=world.alice, project_id=world.project_id, title="S", order=1
    ).id
    review = Round(world, stage_id)
    for signers in (["bob"], ["stranger"], ["alice", "bob"]):
        with pytest.raises(
            InvalidValueError, match="every named signer must be a member allowed to sign"
        ):
            review.request(signers)
    assert review.state() is StageState.DRAFT


def test_the_stage_is_signed_off_when_the_last_named_signer_signs(world: World) -> None:
    bob = world.member("bob", Role.LEAD)
    review = start_round(world, ["alice", "bob"])
    review.sign(world.alice)
    assert review.state() is StageState.IN_REVIEW
    review.sign(bob)
    assert review.state() is StageState.SIGNED_OFF
    assert review.signoff().status is SignOffStatus.COMPLETED


def test_nobody_signs_twice_through_the_application(world: World) -> None:
    world.member("bob", Role.LEAD)
    review = start_round(world, ["alice", "bob"])
    review.sign(world.alice)
    before = position(world.app)
    with pytest.raises(
        RuleViolationError, match="this signer has already signed; nobody decides twice"
    ):
        review.sign(world.alice)
    with pytest.raises(
        RuleViolationError, match="this signer has already signed; nobody decides twice"
    ):
        review.reject(world.alice)
    assert position(world.app) == before


def test_no_reject_after_completion_through_the_application(world: World) -> None:
    bob = world.member("bob", Role.LEAD)
    review = start_round(world, ["alice"])
    review.sign(world.alice)
    with pytest.raises(RuleViolationError, match="stage has no open sign-off"):
        review.reject(bob)
    assert review.state() is StageState.SIGNED_OFF


def test_a_rejection_rejects_the_stage_with_its_reason(world: World) -> None:
    bob = world.member("bob", Role.LEAD)
    review = start_round(world, ["alice", "bob"])
    review.reject(bob, reason="scope is missing")
    stage = world.app.get_stage(
        ctx=world.alice, project_id=world.project_id, stage_id=review.stage_id
    )
    assert (stage.state, stage.rejection_reason) == (StageState.REJECTED, "scope is missing")
    with pytest.raises(RuleViolationError, match="stage has no open sign-off"):
        review.sign(world.alice)


def test_signing_records_time_ip_and_user_agent(world: World) -> None:
    review = start_round(world, [])
    world.clock.advance(timedelta(hours=3))
    alice = CommandContext(world.alice.principal, "cid-sign", ip="198.51.100.4", user_agent="UA/1")
    review.sign(alice, comment=" fine ")
    signature = review.signoff().signatures[internal_key("alice")]
    assert signature.at == EPOCH + timedelta(hours=3)
    assert (signature.ip, signature.user_agent) == ("198.51.100.4", "UA/1")
    assert (signature.comment, signature.external, signature.name) == ("fine", False, "alice")


# External links -------------------------------------------------------------------------


def test_an_external_link_signs_and_records_time_ip_and_user_agent(world: World) -> None:
    review = start_round(world, ["alice"])
    link = review.invite("Carol@Client.com")
    assert link.expires_at == EPOCH + timedelta(days=7)
    review.sign(world.alice)
    assert review.state() is StageState.IN_REVIEW  # carol is required too
    world.clock.advance(timedelta(days=2))
    before = position(world.app)
    world.app.sign_with_link(token=link.token, name=" Carol C ", comment="ok", ctx=PUBLIC)
    signature = review.signoff().signatures[external_key("carol@client.com")]
    assert signature.at == EPOCH + timedelta(days=2)
    assert (signature.ip, signature.user_agent) == (PUBLIC.ip, PUBLIC.user_agent)
    assert (signature.name, signature.external, signature.decision) == (
        "Carol C",
        True,
        Decision.SIGNED,
    )
    assert review.state() is StageState.SIGNED_OFF
    written = events(world.app, before)
    assert {e.actor for e in written} == {"external:carol@client.com"}
    assert {e.correlation_id for e in written} == {"cid-public"}


def test_an_external_link_can_reject(world: World) -> None:
    review = start_round(world, [])
    link = review.invite()
    world.app.reject_with_link(token=link.token, name="Carol", reason="not ready", ctx=PUBLIC)
    assert review.state() is StageState.REJECTED
    with pytest.raises(TokenGoneError, match="this signing link has already been used"):
        world.app.sign_with_link(token=link.token, name="Carol", comment="", ctx=PUBLIC)


def test_the_token_is_stored_only_as_its_sha256_hash(world: World) -> None:
    review = start_round(world, [])
    link = review.invite()
    request = review.signoff().external[str(link.request_id)]
    assert request.token_hash == hash_token(link.token)
    assert len(request.token_hash) == 64
    world.app.sign_with_link(token=link.token, name="Carol", comment="", ctx=PUBLIC)
    world.app.take_snapshot(review.signoff().id)
    secret = link.token.partition(".")[2]
    assert secret in world.token_secrets.issued
    assert len(secret) >= 43  # 32 random bytes, base64url
    everything = stored_bytes(world.app)
    assert hash_token(link.token).encode() in everything  # the search does find what is there
    assert link.token.encode() not in everything
    assert secret.encode() not in everything


def test_a_link_is_single_use(world: World) -> None:
    world.member("bob", Role.LEAD)
    review = start_round(world, ["bob"])  # stays open after carol signs
    link = review.invite()
    world.app.sign_with_link(token=link.token, name="Carol", comment="", ctx=PUBLIC)
    assert review.signoff().external[str(link.request_id)].status is ExternalStatus.USED
    before = position(world.app)
    with pytest.raises(TokenGoneError, match="this signing link has already been used"):
        world.app.sign_with_link(token=link.token, name="Carol", comment="", ctx=PUBLIC)
    with pytest.raises(TokenGoneError, match="this signing link has already been used"):
        world.app.reject_with_link(token=link.token, name="Carol", reason="x", ctx=PUBLIC)
    with pytest.raises(TokenGoneError, match="this signing link has already been used"):
        world.app.view_signing_link(token=link.token, now_ctx=PUBLIC)
    assert position(world.app) == before


def test_a_link_expires_after_seven_days(world: World) -> None:
    review = start_round(world, [])
    link = review.invite()
    world.clock.advance(timedelta(days=7) - timedelta(seconds=1))
    assert world.app.view_signing_link(token=link.token, now_ctx=PUBLIC).request.email == (
        "carol@client.com"
    )
    world.clock.advance(timedelta(seconds=1))
    before = position(world.app)
    with pytest.raises(TokenGoneError, match="this signing link has expired"):
        world.app.sign_with_link(token=link.token, name="Carol", comment="", ctx=PUBLIC)
    assert position(world.app) == before


def test_a_custom_lifetime_is_bounded(world: World) -> None:
    review = start_round(world, [])
    assert review.invite(expires_in=timedelta(minutes=5)).expires_at == EPOCH + timedelta(minutes=5)
    for bad in (timedelta(0), timedelta(minutes=4), timedelta(days=91), timedelta(days=-1)):
        before = position(world.app)
        with pytest.raises(
            InvalidValueError, match="link lifetime must be between 5 minutes and 90 days, 0:00:00"
        ):
            review.invite("dave@client.com", expires_in=bad)
        assert position(world.app) == before


def test_a_revoked_link_is_gone(world: World) -> None:
    review = start_round(world, [])
    link = review.invite()
    world.app.revoke_external_signer(
        ctx=world.alice,
        project_id=world.project_id,
        stage_id=review.stage_id,
        request_id=link.request_id,
    )
    with pytest.raises(TokenGoneError, match="this signing link was revoked"):
        world.app.sign_with_link(token=link.token, name="Carol", comment="", ctx=PUBLIC)
    with pytest.raises(RuleViolationError, match="external request is revoked, not pending"):
        world.app.revoke_external_signer(
            ctx=world.alice,
            project_id=world.project_id,
            stage_id=review.stage_id,
            request_id=link.request_id,
        )


def test_reinviting_the_same_email_revokes_the_old_link(world: World) -> None:
    review = start_round(world, [])
    old = review.invite("carol@client.com")
    new = review.invite("CAROL@client.com")
    external = review.signoff().external
    assert external[str(old.request_id)].status is ExternalStatus.REVOKED
    assert external[str(new.request_id)].status is ExternalStatus.PENDING
    with pytest.raises(TokenGoneError, match="this signing link was revoked"):
        world.app.sign_with_link(token=old.token, name="Carol", comment="", ctx=PUBLIC)
    world.app.sign_with_link(token=new.token, name="Carol", comment="", ctx=PUBLIC)
    assert review.state() is StageState.SIGNED_OFF


def test_an_email_that_decided_cannot_be_invited_again(world: World) -> None:
    world.member("bob", Role.LEAD)
    review = start_round(world, ["bob"])
    link = review.invite()
    world.app.sign_with_link(token=link.token, name="Carol", comment="", ctx=PUBLIC)
    with pytest.raises(RuleViolationError, match="this signer has already decided"):
        review.invite()


def test_a_link_is_bound_to_its_email(world: World) -> None:
    review = start_round(world, [])
    carol = review.invite("carol@client.com")
    review.invite("dave@client.com")
    world.app.sign_with_link(token=carol.token, name="Dave pretending", comment="", ctx=PUBLIC)
    signoff = review.signoff()
    assert set(signoff.signatures) == {external_key("carol@client.com")}
    assert signoff.status is SignOffStatus.OPEN  # dave still has to sign


def test_reopening_cancels_the_round_and_kills_its_links(world: World) -> None:
    review = start_round(world, [])
    link = review.invite()
    first_round = review.signoff().id
    review.reopen()
    cancelled: object = world.app.repository.get(first_round)
    assert isinstance(cancelled, SignOff)
    assert cancelled.status is SignOffStatus.CANCELLED
    with pytest.raises(TokenGoneError, match="this sign-off is no longer open"):
        world.app.sign_with_link(token=link.token, name="Carol", comment="", ctx=PUBLIC)
    # A new round does not revive the old link: it is bound to its round.
    review.request([])
    assert review.signoff().id == signoff_id_for(review.stage_id, 2)
    with pytest.raises(TokenGoneError, match="this sign-off is no longer open"):
        world.app.sign_with_link(token=link.token, name="Carol", comment="", ctx=PUBLIC)


def test_a_link_is_bound_to_its_round_and_stage(world: World) -> None:
    first = start_round(world, [])
    link = first.invite()
    second = world.app.create_stage(
        ctx=world.alice, project_id=world.project_id, title="Design", order=2
    ).id
    Round(world, second).request([])
    other_round = signoff_id_for(second, 1)
    forged = f"{other_round.hex}.{link.token.partition('.')[2]}"
    with pytest.raises(NotFoundError, match="signing link not found"):
        world.app.sign_with_link(token=forged, name="Carol", comment="", ctx=PUBLIC)
    assert Round(world, second).signoff().signatures == {}


@pytest.mark.parametrize("token", ["", "garbage", "nothex.secret", f"{uuid4().hex}.secret"])
def test_unknown_tokens_are_not_found(world: World, token: str) -> None:
    start_round(world, [])
    with pytest.raises(NotFoundError, match="signing link not found"):
        world.app.sign_with_link(token=token, name="X", comment="", ctx=PUBLIC)


def test_links_are_only_issued_for_an_open_round(world: World) -> None:
    stage_id = world.app.create_stage(
        ctx=world.alice, project_id=world.project_id, title="S", order=1
    ).id
    with pytest.raises(RuleViolationError, match="stage has no open sign-off"):
        Round(world, stage_id).invite()
