"""Digest subscriptions: who receives a project's weekly digest (one aggregate per project).

Members opt in (giving the address they receive at) and out at any time; the project's owners
and admins add external addresses (a client, a sponsor) and remove any entry, a member's too
(a member who opted in first with a client's address must not keep the owner from adding it
or taking it off: the member is then simply unsubscribed); anyone holding a signed
unsubscribe link ends the subscription of that link's address. Each change is an event, so
the list is replayed, audited and projected (`digest_recipients`) like everything else.

Members are not subscribed until they opt in (docs/decisions/0028-digest-subscriptions.md):
mail goes only to people who asked for it, and a user id is not necessarily an address.

State is a list, never a map keyed by user id or address: both are user input (see
application.transcodings on maps keyed by user input), and the list is bounded anyway.
An address appears at most once: a member and an external entry for one address would be
one recipient receiving two digests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.base import TeaimAggregate
from domain.email import normalise_address
from domain.errors import InvalidValueError, RuleViolationError
from domain.stamps import Stamp

# Recipients per project: a digest tick sends one email each, so a project may not grow its
# share of the outbox (and of the org's daily cap) without limit.
MAX_RECIPIENTS = 500

Source = Literal["member", "external"]


def digest_subscriptions_id(project_id: UUID) -> UUID:
    """The one subscription list of a project (deterministic: racing first writes conflict)."""
    return uuid5(NAMESPACE_URL, f"teaim:project:{project_id}:digest-subscriptions")


@dataclass(frozen=True, slots=True)
class Subscriber:
    """One recipient of the digest: a member (with their user id) or an external address."""

    address: str
    user_id: str | None
    since: datetime

    @property
    def source(self) -> Source:
        """Whether a member or an owner/admin put this address on the list."""
        return "external" if self.user_id is None else "member"


class DigestSubscriptions(TeaimAggregate):
    """The recipients of one project's weekly digest."""

    project_id: UUID = field(init=False)
    subscribers: list[Subscriber] = field(init=False)

    class Opened(TeaimAggregate.Created):
        def apply(self, subs: DigestSubscriptions) -> None:
            # The stamp's project: the list belongs to the project it is stamped with.
            assert self.project_id is not None
            subs.project_id = self.project_id
            subs.subscribers = []

    class MemberOptedIn(TeaimAggregate.Event):
        user_id: str
        address: str

        def apply(self, subs: DigestSubscriptions) -> None:
            # The member's previous address is replaced: one entry per member. (Events recorded
            # before opt_in refused an external's address also replace that external entry:
            # one per address.)
            subs._drop(lambda s: s.user_id == self.user_id or s.address == self.address)
            subs.subscribers.append(Subscriber(self.address, self.user_id, self.timestamp))

    class MemberOptedOut(TeaimAggregate.Event):
        user_id: str

        def apply(self, subs: DigestSubscriptions) -> None:
            subs._drop(lambda s: s.user_id == self.user_id)

    class ExternalAdded(TeaimAggregate.Event):
        address: str

        def apply(self, subs: DigestSubscriptions) -> None:
            subs.subscribers.append(Subscriber(self.address, None, self.timestamp))

    class ExternalRemoved(TeaimAggregate.Event):
        address: str

        def apply(self, subs: DigestSubscriptions) -> None:
            subs._drop(lambda s: s.user_id is None and s.address == self.address)

    class MemberRemoved(TeaimAggregate.Event):
        """An owner or admin took a member's address off the list: the member is unsubscribed
        (they may opt in again, with another address)."""

        user_id: str
        address: str

        def apply(self, subs: DigestSubscriptions) -> None:
            subs._drop(lambda s: s.user_id == self.user_id)

    class UnsubscribedByLink(TeaimAggregate.Event):
        address: str

        def apply(self, subs: DigestSubscriptions) -> None:
            # Whoever holds the address's link ends that address's subscription, member or not.
            subs._drop(lambda s: s.address == self.address)

    @classmethod
    def open(cls, *, project_id: UUID, stamp: Stamp) -> DigestSubscriptions:
        """The empty list of a project (created with its first change)."""
        subs: DigestSubscriptions = cls._create_stamped(
            cls.Opened,
            id=digest_subscriptions_id(project_id),
            stamp=stamp.for_project(project_id),
        )
        return subs

    # Queries ---------------------------------------------------------------------------

    def of_member(self, user_id: str) -> Subscriber | None:
        """The member's subscription, if they opted in."""
        return next((s for s in self.subscribers if s.user_id == user_id), None)

    def of_address(self, address: str) -> Subscriber | None:
        """The entry for an (already normalised) address, if any."""
        return next((s for s in self.subscribers if s.address == address), None)

    # Commands --------------------------------------------------------------------------

    def opt_in(self, *, user_id: str, address: str, stamp: Stamp) -> None:
        """Subscribe a member at `address` (replacing their previous address; the same
        address again: nothing happens). An address held by another member, or listed as an
        external recipient, is refused."""
        # `user_id` is the authenticated caller (checked where it was authenticated).
        address = normalise_address(address)
        holder = self.of_address(address)
        if holder is not None and holder.user_id is None:
            # An owner put this address on the list for someone else (a client): a member who
            # claimed it could then opt out and end that subscription behind the owner's back.
            raise RuleViolationError(
                "this address receives the digest as an external recipient: an owner or admin"
                " must remove it before a member can opt in with it",
                project_id=self.project_id,
            )
        if holder is not None and holder.user_id != user_id:
            raise RuleViolationError(
                "another member receives the digest at this address", project_id=self.project_id
            )
        if holder is not None and holder.user_id == user_id:
            return
        if holder is None and self.of_member(user_id) is None:
            self._require_room()
        self._trigger(self.MemberOptedIn, stamp, user_id=user_id, address=address)

    def opt_out(self, *, user_id: str, stamp: Stamp) -> None:
        """Unsubscribe a member (nothing happens if they were not subscribed)."""
        if self.of_member(user_id) is not None:
            self._trigger(self.MemberOptedOut, stamp, user_id=user_id)

    def add_external(self, *, address: str, stamp: Stamp) -> None:
        """Put an external address on the list (already there: nothing happens)."""
        address = normalise_address(address)
        holder = self.of_address(address)
        if holder is not None:
            if holder.user_id is not None:
                raise RuleViolationError(
                    "a member already receives the digest at this address",
                    project_id=self.project_id,
                )
            return
        self._require_room()
        self._trigger(self.ExternalAdded, stamp, address=address)

    def remove_external(self, *, address: str, stamp: Stamp) -> None:
        """Take an external address off the list (not there: nothing happens)."""
        holder = self._listed(address)
        if holder is not None and holder.user_id is None:
            self._trigger(self.ExternalRemoved, stamp, address=holder.address)

    def remove(self, *, address: str, stamp: Stamp) -> None:
        """Take any entry off the list (owners and admins): an external address, or a
        member's (`MemberRemoved`: that member is unsubscribed). Not there: nothing happens."""
        holder = self._listed(address)
        if holder is None:
            return
        if holder.user_id is None:
            self._trigger(self.ExternalRemoved, stamp, address=holder.address)
        else:
            self._trigger(self.MemberRemoved, stamp, user_id=holder.user_id, address=holder.address)

    def unsubscribe_by_link(self, *, address: str, stamp: Stamp) -> bool:
        """End the address's subscription (a signed link's holder); whether one was ended.

        Idempotent: a second click, or a link for an address no longer listed, changes nothing.
        """
        holder = self._listed(address)
        if holder is None:
            return False
        self._trigger(self.UnsubscribedByLink, stamp, address=holder.address)
        return True

    def _listed(self, address: str) -> Subscriber | None:
        """The entry `address` names, to take it off the list.

        An entry recorded under an older, looser address rule (still replayed as it was)
        fails today's rule, yet must still be removable: it is found by its recorded text,
        trimmed and lower-cased. Any other address that fails the rule is refused as usual.
        """
        try:
            return self.of_address(normalise_address(address))
        except InvalidValueError:
            recorded = self.of_address(address.strip().lower())
            if recorded is None:
                raise
            return recorded

    def _require_room(self) -> None:
        if len(self.subscribers) >= MAX_RECIPIENTS:
            raise RuleViolationError(
                f"a project's digest has at most {MAX_RECIPIENTS} recipients",
                project_id=self.project_id,
            )

    def _drop(self, condition: Callable[[Subscriber], bool]) -> None:
        self.subscribers = [s for s in self.subscribers if not condition(s)]
