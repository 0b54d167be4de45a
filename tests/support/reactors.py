"""A reactor of the tests' own: mailings that a fake mail relay delivers, outcomes recorded.

`Mailing` is a test aggregate (requested, then delivered once per effect id); `MailRelay` is the
effect's target, deduplicating on the idempotency key the way a real relay deduplicates on a
message id; `MailReactor` ties them together through the Reactor protocol, with switches that
crash it (a BaseException, which the runner does not catch: the process is gone) at the two
points that matter.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import field
from datetime import UTC, datetime
from typing import ClassVar, Protocol
from uuid import UUID, uuid4

from application.app import Teaim
from application.reactors import Reaction, effect_id_for
from domain.base import TeaimAggregate
from domain.stamps import Stamp

ACTOR = "service:test-mailer"


class Crash(BaseException):
    """The process dies here (nothing after this line runs, nothing catches it)."""


class Mailing(TeaimAggregate):
    """An email to send; `deliveries` maps effect ids to the relay's receipts."""

    PROJECT_SCOPED: ClassVar[bool] = False
    to: str = field(init=False)
    body: str = field(init=False)
    deliveries: dict[str, str] = field(init=False)

    class Requested(TeaimAggregate.Created):
        to: str
        body: str

        def apply(self, mailing: Mailing) -> None:
            mailing.to = self.to
            mailing.body = self.body
            mailing.deliveries = {}

    class Delivered(TeaimAggregate.Event):
        effect_id: UUID
        receipt: str

        def apply(self, mailing: Mailing) -> None:
            mailing.deliveries[str(self.effect_id)] = self.receipt

    @classmethod
    def request(cls, *, to: str, body: str, stamp: Stamp) -> Mailing:
        mailing: Mailing = cls._create_stamped(
            cls.Requested, id=uuid4(), stamp=stamp, to=to, body=body
        )
        return mailing

    def record_delivery(self, *, effect_id: UUID, receipt: str, stamp: Stamp) -> None:
        """Idempotent: a delivery already recorded is not recorded again."""
        if str(effect_id) not in self.deliveries:
            self._trigger(self.Delivered, stamp, effect_id=effect_id, receipt=receipt)


class Relay(Protocol):
    """Where mail goes: delivers once per idempotency key, returns the delivery's receipt."""

    def send(self, *, key: str, to: str, body: str) -> str: ...


class MailRelay:
    """The effect's target: counts every attempt, delivers once per idempotency key."""

    def __init__(self) -> None:
        self.attempts: Counter[str] = Counter()
        self.delivered: dict[str, str] = {}
        self.failures_left = 0
        self._lock = threading.Lock()

    def send(self, *, key: str, to: str, body: str) -> str:
        with self._lock:
            self.attempts[key] += 1
            if self.failures_left > 0:
                self.failures_left -= 1
                raise ConnectionError("relay unavailable")
            if key not in self.delivered:
                self.delivered[key] = f"receipt-{len(self.delivered) + 1}:{to}:{len(body)}"
            return self.delivered[key]


class MailReactor:
    """Sends each requested mailing once and records the delivery on the mailing."""

    name: ClassVar[str] = "test-mailer"
    events: ClassVar[tuple[type[TeaimAggregate.Event], ...]] = (Mailing.Requested,)

    def __init__(self, app: Teaim, relay: Relay) -> None:
        self.app = app
        self.relay = relay
        self.crash_before_record = False
        self.crash_after_record = False
        # Set while `perform` runs; `perform` then waits for `release` (when armed).
        self.performing = threading.Event()
        self.release: threading.Event | None = None

    def reaction(self, event: TeaimAggregate.Event) -> Reaction | None:
        if not isinstance(event, Mailing.Requested):
            return None
        return Reaction(effect_id=effect_id_for(self.name, event), org_id=event.org_id, event=event)

    def _mailing(self, reaction: Reaction) -> Mailing:
        mailing: object = self.app.repository.get(reaction.event.originator_id)
        assert isinstance(mailing, Mailing)
        return mailing

    def outcome_recorded(self, reaction: Reaction) -> bool:
        return str(reaction.effect_id) in self._mailing(reaction).deliveries

    def perform(self, reaction: Reaction) -> str:
        self.performing.set()
        if self.release is not None:
            assert self.release.wait(30), "the test never released perform"
        mailing = self._mailing(reaction)
        return self.relay.send(key=str(reaction.effect_id), to=mailing.to, body=mailing.body)

    def record(self, reaction: Reaction, outcome: str) -> None:
        if self.crash_before_record:
            self.crash_before_record = False
            raise Crash("killed between the effect and its outcome")
        mailing = self._mailing(reaction)
        mailing.record_delivery(
            effect_id=reaction.effect_id,
            receipt=outcome,
            stamp=Stamp(reaction.org_id, ACTOR, f"reactor:{reaction.effect_id}", datetime.now(UTC)),
        )
        self.app.save(mailing)
        if self.crash_after_record:
            self.crash_after_record = False
            raise Crash("killed after the outcome, before the position moved")


def request_mailings(app: Teaim, org: UUID, count: int) -> list[UUID]:
    """`count` mailings requested in one save."""
    stamp = Stamp(org, "owner", "test", datetime.now(UTC))
    mailings = [
        Mailing.request(to=f"u{n}@example.com", body="hi", stamp=stamp) for n in range(count)
    ]
    app.save(*mailings)
    return [mailing.id for mailing in mailings]
