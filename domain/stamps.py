"""Who did what, for which tenant, under which request: carried by every event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from domain.errors import InvalidValueError

# Actor names the system itself uses (the internal service, external signers); no user id
# may take one, or a member could pass for the service or a client in the audit trail.
# "link:" names the holder of a signed link with no account (an unsubscribe link).
RESERVED_ACTOR_PREFIXES = ("service:", "external:", "link:")


def validate_user_id(user_id: str) -> str:
    """A user id as identity providers issue them: 1-200 printable characters, not reserved."""
    if not 1 <= len(user_id) <= 200 or not user_id.isprintable() or user_id != user_id.strip():
        raise InvalidValueError("user id must be 1-200 printable characters, no outer spaces")
    if user_id.startswith(RESERVED_ACTOR_PREFIXES):
        raise InvalidValueError("user id uses a reserved prefix", user_id=user_id)
    return user_id


@dataclass(frozen=True, slots=True)
class Stamp:
    """The authenticated context of one command, applied to every event it causes."""

    org_id: UUID
    actor: str
    correlation_id: str
    at: datetime
    project_id: UUID | None = None

    def __post_init__(self) -> None:
        # An aware timestamp is part of the audit contract: naive times are ambiguous.
        if self.at.tzinfo is None:
            raise ValueError("Stamp.at must be timezone-aware")
        if not self.actor:
            raise ValueError("Stamp.actor must name a principal")

    def for_project(self, project_id: UUID) -> Stamp:
        """The same context, scoped to one project."""
        return Stamp(
            org_id=self.org_id,
            actor=self.actor,
            correlation_id=self.correlation_id,
            at=self.at,
            project_id=project_id,
        )
