"""The contexts commands run in: a user's request, the internal service's, an external signer's."""

from __future__ import annotations

from uuid import UUID, uuid4

from application.context import CommandContext, Principal, PublicContext
from domain.roles import Role


def user(
    user_id: str, org_id: UUID, org_role: Role = Role.MEMBER, cid: str = "cid"
) -> CommandContext:
    """The context of a user's request."""
    return CommandContext(Principal(user_id, org_id, org_role), cid)


def service(
    org_id: UUID, cid: str = "cid-service", *, user_id: str = "service:cli"
) -> CommandContext:
    """The context of the internal service acting for one org."""
    return CommandContext(Principal(user_id, org_id, Role.OWNER, is_service=True), cid)


def public() -> PublicContext:
    """An external signer's request (a fresh correlation id each time)."""
    return PublicContext(correlation_id=f"pub-{uuid4().hex[:12]}", ip="203.0.113.9")
