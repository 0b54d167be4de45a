"""Security denials: every refused access is itself an event an auditor can find."""

from __future__ import annotations

from dataclasses import field
from uuid import UUID

from domain.base import TeaimAggregate
from domain.stamps import Stamp


class SecurityDenial(TeaimAggregate):
    """A single refused attempt (audit action `security.denied`)."""

    PROJECT_SCOPED = False

    action: str = field(init=False)
    target_kind: str = field(init=False)
    target_id: str = field(init=False)
    reason: str = field(init=False)

    class Recorded(TeaimAggregate.Created):
        action: str
        target_kind: str
        target_id: str
        reason: str

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
        )
        return denial
