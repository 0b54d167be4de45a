"""Fakes and fixtures for the unit tests: the application on in-memory persistence, no database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID, uuid4

import pytest
from eventsourcing.popo import POPOApplicationRecorder

from application.app import Teaim
from application.context import CommandContext, Principal
from domain.roles import Role
from domain.stamps import Stamp
from tests.support.clocks import EPOCH, SettableClock
from tests.support.secrets import TokenSecrets

# The library's in-memory persistence, named explicitly so that a PERSISTENCE_MODULE exported in
# the developer's shell cannot point the unit tests at a database.
IN_MEMORY: dict[str, str] = {"PERSISTENCE_MODULE": "eventsourcing.popo"}
# Production runs with the repository's aggregate cache on (interfaces/runtime.py), which hands
# reads the cached instance and commands a copy: application tests run both ways.
CACHED: dict[str, str] = {**IN_MEMORY, "AGGREGATE_CACHE_MAXSIZE": "1000"}


def make_app(
    clock: SettableClock | None = None,
    token_secrets: TokenSecrets | None = None,
    *,
    cached: bool = False,
) -> Teaim:
    """A Teaim application on in-memory persistence (usable inside hypothesis tests)."""
    app = Teaim(
        CACHED if cached else IN_MEMORY,
        clock=clock or SettableClock(),
        secrets=token_secrets or TokenSecrets(),
        audit_log=None,
    )
    assert isinstance(app.recorder, POPOApplicationRecorder)
    assert (app.repository.cache is not None) is cached
    return app


def user(
    user_id: str, org_id: UUID, org_role: Role = Role.MEMBER, cid: str = "cid"
) -> CommandContext:
    """The context of a user's request."""
    return CommandContext(Principal(user_id, org_id, org_role), cid)


def service(org_id: UUID, cid: str = "cid-service") -> CommandContext:
    """The context of the internal service acting for one org."""
    return CommandContext(Principal("service:cli", org_id, Role.OWNER, is_service=True), cid)


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
