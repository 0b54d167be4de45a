"""The authenticated context every command and query takes."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from domain.roles import Role


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a user of one org, or the internal service acting for one org."""

    user_id: str
    org_id: UUID
    org_role: Role
    is_service: bool = False


@dataclass(frozen=True, slots=True)
class CommandContext:
    """A principal plus what identifies the request (for stamps and signatures)."""

    principal: Principal
    correlation_id: str
    ip: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True, slots=True)
class PublicContext:
    """An unauthenticated request (an external signer with a link)."""

    correlation_id: str
    ip: str | None = None
    user_agent: str | None = None
