"""Fixtures for the unit tests: a world (app, org, admin, project) on in-memory persistence.

The fakes they use live in tests/support."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID, uuid4

import pytest

from application.app import Teaim
from application.context import CommandContext
from domain.roles import Role
from domain.stamps import Stamp
from tests.support.apps import make_app
from tests.support.clocks import EPOCH, SettableClock
from tests.support.contexts import service, user
from tests.support.secrets import TokenSecrets


@dataclass
class World:
    """An app with one registered org, an org admin ("alice") and her project."""

    app: Teaim
    clock: SettableClock
    token_secrets: TokenSecrets
    org_id: UUID
    alice: CommandContext
    project_id: UUID

    def ctx(self, user_id: str, org_role: Role = Role.MEMBER, cid: str = "cid") -> CommandContext:
        """A user of this world's org."""
        return user(user_id, self.org_id, org_role, cid)

    def member(
        self, user_id: str, role: Role, *, signer: bool = False, org_role: Role = Role.MEMBER
    ) -> CommandContext:
        """Add a project member (as alice, the owner) and return their context."""
        self.app.add_member(
            ctx=self.alice, project_id=self.project_id, user_id=user_id, role=role, signer=signer
        )
        return self.ctx(user_id, org_role)


def make_stamp(
    org_id: UUID | None = None,
    *,
    actor: str = "alice",
    project_id: UUID | None = None,
    at: datetime = EPOCH,
    correlation_id: str = "cid-domain",
) -> Stamp:
    """A Stamp for domain-level tests."""
    return Stamp(
        org_id=org_id or uuid4(),
        actor=actor,
        correlation_id=correlation_id,
        at=at,
        project_id=project_id,
    )


def make_world(clock: SettableClock | None = None, *, cached: bool = False) -> World:
    """A fresh world (usable inside hypothesis tests, where fixtures are not re-run)."""
    clock = clock or SettableClock()
    token_secrets = TokenSecrets()
    app = make_app(clock, token_secrets, cached=cached)
    org_id = uuid4()
    app.create_org(ctx=service(org_id), name="Acme")
    alice = user("alice", org_id, Role.ADMIN, "cid-alice")
    project = app.create_project(ctx=alice, code="ACME-1", name="Portal")
    return World(app, clock, token_secrets, org_id, alice, project.id)


@pytest.fixture
def clock() -> SettableClock:
    """A clock standing at EPOCH until the test moves it."""
    return SettableClock()


@pytest.fixture
def token_secrets() -> TokenSecrets:
    """Real random tokens, remembered."""
    return TokenSecrets()


@pytest.fixture(params=[False, True], ids=["uncached", "cached"])
def cached(request: pytest.FixtureRequest) -> bool:
    """Whether the repository's aggregate cache is on."""
    value: bool = request.param
    return value


@pytest.fixture
def app(clock: SettableClock, token_secrets: TokenSecrets, cached: bool) -> Teaim:
    """An empty application."""
    return make_app(clock, token_secrets, cached=cached)


@pytest.fixture
def world(clock: SettableClock, cached: bool) -> World:
    """An org with alice (org admin) owning project ACME-1."""
    return make_world(clock, cached=cached)
