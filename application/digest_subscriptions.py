"""Digest subscription commands: who receives a project's weekly digest.

Any member (read is enough: a guest observing the project may want its digest) opts in or out
for themselves; the project's owners and admins (`Permission.MANAGE_DIGEST` in the role
matrix) add external addresses and remove any address (a member's too: a member who opted in
first with a client's address cannot keep it from them); the holder of a signed
unsubscribe link ends that address's subscription without an account (RFC 8058 one-click).
See docs/decisions/0028-digest-subscriptions.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from application.base import TeaimBase
from application.context import CommandContext, PublicContext
from application.results import CommandResult
from application.unsubscribe_tokens import read_unsubscribe_token
from domain.addresses import is_plain_address
from domain.digest_subscription import DigestSubscriptions, Subscriber, digest_subscriptions_id
from domain.email import normalise_address
from domain.errors import InvalidValueError, NotFoundError, RuleViolationError
from domain.project import Project
from domain.roles import RANK, Permission, Role
from domain.stamps import Stamp

# The actor of an unsubscribe by link: whoever holds the link, with no account.
LINK_ACTOR = "link:unsubscribe"


@dataclass(frozen=True, slots=True)
class DigestSubscriptionsOverview:
    """What a member sees: their own subscription and how many receive the digest; the
    recipients themselves only for pm and above (addresses are personal data)."""

    subscribed: bool
    address: str | None
    count: int
    recipients: list[Subscriber] | None


@dataclass(frozen=True, slots=True)
class UnsubscribeLink:
    """What an unsubscribe link would end: the address, on which project's digest."""

    project_name: str
    address: str


class DigestSubscriptionCommands(TeaimBase):
    """Opting in and out, external recipients, and unsubscribing by link."""

    def digest_subscriptions(
        self, *, ctx: CommandContext, project_id: UUID
    ) -> DigestSubscriptionsOverview:
        """The caller's subscription and the count; the list for pm and above."""
        project, role = self._guard_project(
            ctx, project_id, Permission.READ, action="digest.subscriptions.read"
        )
        live = _live(project, self._subscriptions(project_id, for_update=False))
        mine = next((s for s in live if s.user_id == ctx.principal.user_id), None)
        sees_list = RANK[role] >= RANK[Role.PM]
        return DigestSubscriptionsOverview(
            subscribed=mine is not None,
            address=None if mine is None else mine.address,
            count=len(live),
            recipients=live if sees_list else None,
        )

    def set_my_digest_subscription(
        self, *, ctx: CommandContext, project_id: UUID, subscribed: bool, address: str | None
    ) -> CommandResult:
        """Opt the caller in (at `address`, by default their user id if it is an address)
        or out."""
        project, _ = self._guard_project(
            ctx, project_id, Permission.READ, action="digest.subscription.set"
        )
        project.require_writable()
        if ctx.principal.is_service:
            # The service acts for the org; it is no member and has no mailbox of its own.
            raise RuleViolationError("the internal service cannot subscribe itself")
        user_id = ctx.principal.user_id
        stamp = self._stamp(ctx, project_id)
        subs = self._subscriptions(project_id) or DigestSubscriptions.open(
            project_id=project_id, stamp=stamp
        )
        if subscribed:
            subs.opt_in(user_id=user_id, address=_address_of(user_id, address), stamp=stamp)
        else:
            subs.opt_out(user_id=user_id, stamp=stamp)
        return CommandResult(id=subs.id, position=self._commit(subs))

    def add_digest_recipient(
        self, *, ctx: CommandContext, project_id: UUID, address: str
    ) -> CommandResult:
        """Put an external address on the project's digest (owners and admins)."""
        self._guard_digest_manager(ctx, project_id, action="digest.recipient.add")
        stamp = self._stamp(ctx, project_id)
        subs = self._subscriptions(project_id) or DigestSubscriptions.open(
            project_id=project_id, stamp=stamp
        )
        subs.add_external(address=address, stamp=stamp)
        return CommandResult(id=subs.id, position=self._commit(subs))

    def remove_digest_recipient(
        self, *, ctx: CommandContext, project_id: UUID, address: str
    ) -> CommandResult:
        """Take an address off the project's digest (owners and admins): an external one, or
        a member's (the member is unsubscribed); not listed: nothing changes."""
        self._guard_digest_manager(ctx, project_id, action="digest.recipient.remove")
        subs = self._subscriptions(project_id)
        if subs is None:
            normalise_address(address)  # a bad address is a 422 whether or not a list exists
            return CommandResult(id=digest_subscriptions_id(project_id), position=0)
        subs.remove(address=address, stamp=self._stamp(ctx, project_id))
        return CommandResult(id=subs.id, position=self._commit(subs))

    def read_unsubscribe_link(self, *, token: str) -> UnsubscribeLink:
        """What a genuine link would unsubscribe (the confirm page shows it); changes nothing."""
        project, address = self._link_target(token)
        return UnsubscribeLink(project_name=project.name, address=address)

    def unsubscribe_by_link(self, *, token: str, ctx: PublicContext) -> CommandResult:
        """End the subscription a signed link names (no account; idempotent).

        Honoured even in an archived project: a recipient can always stop the mail.
        """
        project, address = self._link_target(token)
        subs = self._subscriptions(project.id)
        if subs is None:
            return CommandResult(id=digest_subscriptions_id(project.id), position=0)
        stamp = Stamp(
            org_id=project.org_id,
            actor=LINK_ACTOR,
            correlation_id=ctx.correlation_id,
            at=self.clock.now(),
            project_id=project.id,
        )
        subs.unsubscribe_by_link(address=address, stamp=stamp)
        return CommandResult(id=subs.id, position=self._commit(subs))

    # Internals -------------------------------------------------------------------------

    def _subscriptions(
        self, project_id: UUID, *, for_update: bool = True
    ) -> DigestSubscriptions | None:
        return self._find(
            DigestSubscriptions, digest_subscriptions_id(project_id), for_update=for_update
        )

    def _link_target(self, token: str) -> tuple[Project, str]:
        """The project and normalised address a genuine token names.

        Anything else is "not found": a forged, garbled or truncated token, one signed under
        another key, or one naming a project that does not exist (or not in the token's org)
        learns nothing more than any other.
        """
        key = self.config.unsubscribe_key
        if not key:
            raise NotFoundError("unsubscribe link not found")
        try:
            target = read_unsubscribe_token(key, token)
        except InvalidValueError:
            raise NotFoundError("unsubscribe link not found") from None
        try:
            address = normalise_address(target.address)
        except InvalidValueError:
            # A genuine link (we signed it) for an address recorded under an older, looser
            # rule: it still ends that address's subscription.
            address = target.address
        project = self._find(Project, target.project_id, for_update=False)
        if project is None or project.org_id != target.org_id:
            raise NotFoundError("unsubscribe link not found")
        return project, address

    def _guard_digest_manager(self, ctx: CommandContext, project_id: UUID, *, action: str) -> None:
        project, _ = self._guard_project(ctx, project_id, Permission.MANAGE_DIGEST, action=action)
        project.require_writable()


def _address_of(user_id: str, address: str | None) -> str:
    """The address given, else the user id when it is one (most identity providers' `sub`
    is not, so then the member must say where they receive mail)."""
    if address is not None:
        return address
    if is_plain_address(user_id.strip().lower()):
        return user_id
    raise InvalidValueError("give the address to receive the digest at (your user id is not one)")


def _live(project: Project, subs: DigestSubscriptions | None) -> list[Subscriber]:
    """The entries that receive mail: externals, and members still in the project (the
    read model drops a member who leaves; so does every view here)."""
    if subs is None:
        return []
    return [s for s in subs.subscribers if s.user_id is None or s.user_id in project.members]
