"""Applications for tests: on the library's in-memory persistence (unit tests) or on a test
database (integration tests); a seeded org; a log filled with real events."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

from eventsourcing.popo import POPOApplicationRecorder

from adapters.postgres.database import DatabaseUrl
from application.app import Teaim
from application.config import AppConfig
from application.context import CommandContext
from application.ports import Clock, SecretSource
from domain.raid import Memory
from domain.roles import Role
from domain.stamps import Stamp
from tests.support.clocks import SettableClock, WallClock
from tests.support.contexts import service, user
from tests.support.secrets import TokenSecrets

# The library's in-memory persistence, named explicitly so that a PERSISTENCE_MODULE exported in
# the developer's shell cannot point the unit tests at a database.
IN_MEMORY: dict[str, str] = {"PERSISTENCE_MODULE": "eventsourcing.popo"}
# Production runs with the repository's aggregate cache on (interfaces/runtime.py), which hands
# reads the cached instance and commands a copy: application tests run both ways.
CACHED: dict[str, str] = {**IN_MEMORY, "AGGREGATE_CACHE_MAXSIZE": "1000"}
# The link key of apps on a test database: every process on one database must derive the same
# email links (as the runtime's shared key file makes them), or a resend would differ.
DATABASE_LINK_KEY = b"test-link-key:" + b"l" * 32


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


def open_app(url: str, *, clock: Clock | None = None, secrets: SecretSource | None = None) -> Teaim:
    """The application on a test database (real time and real tokens unless given others)."""
    return Teaim(
        DatabaseUrl.parse(url).eventsourcing_env(),
        clock=clock or WallClock(),
        secrets=secrets or TokenSecrets(),
        audit_log=None,
        config=AppConfig(unsubscribe_key=DATABASE_LINK_KEY),
    )


def seed_org(app: Teaim) -> tuple[UUID, UUID, CommandContext]:
    """An org with one project; returns (org, project, its owner's context)."""
    org = uuid4()
    app.create_org(ctx=service(org, "seed"), name="Org")
    owner = user("owner", org, Role.ADMIN, "seed")
    project = app.create_project(ctx=owner, code=f"P{uuid4().hex[:6]}", name="Project").id
    return org, project, owner


def fill(app: Teaim, org: UUID, project: UUID, events: int) -> None:
    """Append about `events` real events quickly (memories edited in saves of 100)."""
    written = 0
    while written < events:
        stamp = Stamp(org, "owner", "fill", datetime.now(UTC), project_id=project)
        memory = Memory.create(memory_id=uuid4(), title="m", body="", tags=[], stamp=stamp)
        for n in range(min(99, events - written - 1)):
            memory.update(title=f"t{n}", body="", tags=[], stamp=stamp)
        written += len(memory.pending_events)
        app.save(memory)
