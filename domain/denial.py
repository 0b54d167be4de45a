"""Security denials: every refused access is itself an event an auditor can find.

A burst of refusals by one principal is coalesced, so that random requests (a scan of project
ids) cannot grow the log without bound: within a window, the first `burst` refusals of a
principal are recorded one by one, the rest are counted. When the window has closed, the
first counted refusal is recorded (reason `coalesced`) with `repeated`, how many more it stands
for, the first and last time they happened and a sample of their targets. Every refusal is
thus in the log, as an event or inside one; an auditor sums `1 + repeated` over
`security.denied` events to count refusals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from domain.base import TeaimAggregate
from domain.stamps import Stamp

COALESCED = "coalesced"
# Distinct targets a count record names (the rest are only counted).
TARGET_SAMPLE = 10


class SecurityDenial(TeaimAggregate):
    """A refused attempt (audit action `security.denied`), or a count of coalesced ones."""

    PROJECT_SCOPED = False

    action: str = field(init=False)
    target_kind: str = field(init=False)
    target_id: str = field(init=False)
    reason: str = field(init=False)

    class Recorded(TeaimAggregate.Created):
        """A refusal, and `repeated` more by the same principal it stands for (coalesced)."""

        class_version = 2

        action: str
        target_kind: str
        target_id: str
        reason: str
        # Further refusals this record stands for (reason `coalesced`; 0 otherwise), when the
        # refusals it covers happened and a sample of their targets (v1: none, a single one).
        repeated: int = 0
        first_at: datetime | None = None
        last_at: datetime | None = None
        targets: list[str] = field(default_factory=list)

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Single refusals recorded before coalescing."""
            state.update(repeated=0, first_at=None, last_at=None, targets=[])

        def apply(self, denial: SecurityDenial) -> None:
            denial.action = self.action
            denial.target_kind = self.target_kind
            denial.target_id = self.target_id
            denial.reason = self.reason

    @classmethod
    def record(
        cls,
        *,
        denial_id: UUID,
        action: str,
        target_kind: str,
        target_id: str,
        reason: str,
        stamp: Stamp,
    ) -> SecurityDenial:
        """Record one denial, stamped with the caller's own org (never the target's)."""
        denial: SecurityDenial = cls._create_stamped(
            cls.Recorded,
            id=denial_id,
            stamp=stamp,
            action=action[:200],
            target_kind=target_kind,
            target_id=target_id[:200],
            reason=reason,
            repeated=0,
            first_at=None,
            last_at=None,
            targets=[],
        )
        return denial

    @classmethod
    def record_count(cls, *, denial_id: UUID, burst: DenialBurst, stamp: Stamp) -> SecurityDenial:
        """Record the refusals of a burst that were counted: the first, and how many more."""
        denial: SecurityDenial = cls._create_stamped(
            cls.Recorded,
            id=denial_id,
            stamp=stamp,
            action=burst.action[:200],
            target_kind=burst.target_kind,
            target_id=(burst.targets[0] if burst.targets else "")[:200],
            reason=COALESCED,
            repeated=burst.counted - 1,
            first_at=burst.first_at,
            last_at=burst.last_at,
            targets=[t[:200] for t in burst.targets],
        )
        return denial


@dataclass
class DenialBurst:
    """One principal's refusals in one window: how many were recorded, and the counted rest."""

    started: datetime
    recorded: int = 0
    counted: int = 0
    action: str = ""
    target_kind: str = ""
    first_at: datetime | None = None
    last_at: datetime | None = None
    targets: list[str] = field(default_factory=list)

    def count(self, *, at: datetime, action: str, target_kind: str, target_id: str) -> None:
        """Count a refusal instead of recording it."""
        if self.counted == 0:
            self.action, self.target_kind, self.first_at = action, target_kind, at
        self.counted += 1
        self.last_at = at
        if len(self.targets) < TARGET_SAMPLE and target_id not in self.targets:
            self.targets.append(target_id)


Principal = tuple[UUID, str]


@dataclass
class DenialCoalescer:
    """Decides, per refusal, whether it is recorded or counted; hands back finished counts.

    Pure and not thread-safe (the application holds a lock around it). A window opens at a
    principal's first refusal and lasts `window`; at most `principals` windows are open at
    once (the oldest is closed early beyond that), so memory is bounded too.
    """

    window: timedelta
    burst: int
    principals: int
    open: dict[Principal, DenialBurst] = field(default_factory=dict)

    def admit(
        self, who: Principal, *, at: datetime, action: str, target_kind: str, target_id: str
    ) -> tuple[bool, list[tuple[Principal, DenialBurst]]]:
        """(record this refusal on its own?, counts of closed windows to record now)."""
        finished = self.expired(at)
        current = self.open.get(who)
        if current is None:
            if len(self.open) >= self.principals:
                oldest = next(iter(self.open))
                finished.append((oldest, self.open.pop(oldest)))
            current = self.open[who] = DenialBurst(started=at)
        if current.recorded < self.burst:
            current.recorded += 1
            return True, [f for f in finished if f[1].counted]
        current.count(at=at, action=action, target_kind=target_kind, target_id=target_id)
        return False, [f for f in finished if f[1].counted]

    def expired(self, now: datetime) -> list[tuple[Principal, DenialBurst]]:
        """Close the windows that ended by `now` (windows are kept in opening order)."""
        finished = []
        while self.open:
            who, burst = next(iter(self.open.items()))
            if now < burst.started + self.window:
                break
            finished.append((who, self.open.pop(who)))
        return finished

    def drain(self) -> list[tuple[Principal, DenialBurst]]:
        """Close every window (at shutdown, or on demand): the counts still to record."""
        finished = [(who, burst) for who, burst in self.open.items() if burst.counted]
        self.open.clear()
        return finished
