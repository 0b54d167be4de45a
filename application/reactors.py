"""Reactors: work with side effects that follows the log and records its outcome on an aggregate.

A projection turns events into rows inside one transaction, so it can be replayed at will. A
reactor cannot: its work is I/O outside the database (extract text, OCR, embed, send an
email), which no transaction can roll back. So a reactor

1. follows the log with its own tracked position, like a projection;
2. for each event it reacts to, names the side effect with a deterministic id (`effect_id`,
   from the reactor's name and the event's aggregate and version);
3. before performing the effect, looks at the aggregate for the effect's outcome, and skips
   the effect when it is already recorded (a replay, or a crash after the outcome);
4. performs the effect outside any database transaction, passing `effect_id` to the target as
   its idempotency key;
5. records the outcome as a command on an aggregate (an event such as `TextExtracted` that
   carries the effect id), and only then lets its position move past the event.

A crash between 4 and 5 repeats the effect on restart (at least once): the idempotency key at
the target (a message id the mail relay deduplicates on, a content-addressed blob for
extracted text) makes the repeat harmless. Nothing here knows SQL: the runner that feeds a
reactor lives in `adapters/postgres/reactor_runner.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol, TypeVar
from uuid import UUID, uuid5

from domain.base import TeaimAggregate

# Effect ids are uuid5 names under this namespace (itself uuid5(NAMESPACE_URL, "teaim:effect")).
EFFECT_NAMESPACE = UUID("78e7add4-68b8-5be0-a558-5e638250f9e0")

OutcomeT = TypeVar("OutcomeT")


def effect_id_for(reactor_name: str, event: TeaimAggregate.Event) -> UUID:
    """The id of the effect `reactor_name` performs for `event`: the same on every replay."""
    return effect_id_at(reactor_name, event.originator_id, event.originator_version)


def effect_id_at(reactor_name: str, originator_id: UUID, version: int) -> UUID:
    """The effect id of the reactor's reaction to the aggregate's event at `version` (a
    target that holds only the id can find the event it came from by trying versions)."""
    return uuid5(EFFECT_NAMESPACE, f"{reactor_name}/{originator_id}/{version}")


@dataclass(frozen=True, slots=True)
class Reaction:
    """One side effect an event calls for."""

    # Deterministic (see effect_id_for): the outcome event carries it, and the effect's
    # target receives it as its idempotency key.
    effect_id: UUID
    # The tenant the effect is done for (every log line and command names it).
    org_id: UUID
    event: TeaimAggregate.Event


class Reactor(Protocol[OutcomeT]):
    """A process manager: the events it reacts to, its effect, and the command recording it.

    Methods are called by the runner, one event at a time, in log order; `perform` is never
    called inside a database transaction. All four must be safe to call again for the same
    reaction after a crash at any point.
    """

    # Names the reactor's tracked position; never rename a reactor that has run.
    name: ClassVar[str]
    # The domain event classes it may react to (others are passed over without decoding).
    events: ClassVar[tuple[type[TeaimAggregate.Event], ...]]

    def reaction(self, event: TeaimAggregate.Event) -> Reaction | None:
        """The effect this event calls for, or None (pure: no I/O, no clock)."""
        ...

    def outcome_recorded(self, reaction: Reaction) -> bool:
        """Whether the aggregate already holds the outcome of `reaction.effect_id`."""
        ...

    def perform(self, reaction: Reaction) -> OutcomeT:
        """Do the side effect, handing `reaction.effect_id` to the target as idempotency key.

        Raise for a failure worth retrying (the target is down); return an outcome that says
        "failed" for one that is not (the file is not a PDF), so the log moves on.
        """
        ...

    def record(self, reaction: Reaction, outcome: OutcomeT) -> None:
        """Issue the command that records the outcome on its aggregate (idempotent)."""
        ...
