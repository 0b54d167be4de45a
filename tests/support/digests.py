"""Real events for digest tests: a project with a week of sign-offs, documents and RAID changes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import psycopg

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.digest_db import DigestDatabase
from adapters.postgres.digest_source import PostgresDigestSource
from adapters.postgres.queries.digest_content import PostgresDigestContent
from application.app import Teaim
from application.config import AppConfig
from application.digests import Digests
from application.ports import Clock
from domain.digest_subscription import DigestSubscriptions
from domain.org import DigestWhenEmpty, Org, Weekday
from domain.raid import RaidKind
from domain.roles import Role
from domain.stamps import Stamp
from tests.support.clocks import SettableClock
from tests.support.contexts import service, user
from tests.support.secrets import TokenSecrets

# The digest these tests look at: Berlin, Friday 27 Nov 2026 09:00 CET = 08:00Z, covering
# [Fri 20 Nov 08:00Z, Fri 27 Nov 08:00Z), due items from 27 Nov to 3 Dec.
WEEK_END = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
BEFORE = WEEK_END - timedelta(days=9)
DURING = WEEK_END - timedelta(days=3)
AFTER = WEEK_END + timedelta(hours=2)


@dataclass(frozen=True, slots=True)
class WeekOfWork:
    """What `week_of_work` made (ids to look for in the digest)."""

    org_id: UUID
    project_id: UUID
    waiting_stage: UUID
    signed_stage: UUID
    rejected_stage: UUID
    new_document: UUID
    renamed_document: UUID
    late_document: UUID
    new_raid: UUID
    changed_raid: UUID
    due_raid: UUID


def new_org(app: Teaim) -> UUID:
    """A registered org."""
    org = uuid4()
    app.create_org(ctx=service(org, "seed"), name="Org")
    return org


def week_of_work(app: Teaim, clock: SettableClock, org: UUID, label: str) -> WeekOfWork:
    """A project of `org` whose titles all carry `label`, with events before, during and
    after the digest week (the clock is left at AFTER)."""
    owner = user("owner", org, Role.ADMIN, "seed")
    clock.set(BEFORE)
    project = app.create_project(ctx=owner, code=f"P{uuid4().hex[:6]}", name=f"{label} project").id
    app.add_member(ctx=owner, project_id=project, user_id="bob", role=Role.LEAD, signer=False)
    app.add_member(ctx=owner, project_id=project, user_id="carol", role=Role.MEMBER, signer=True)
    bob, carol = user("bob", org), user("carol", org)

    def stage(title: str) -> UUID:
        return app.create_stage(ctx=owner, project_id=project, title=f"{label} {title}", order=1).id

    def document(name: str) -> UUID:
        return app.register_artifact(
            ctx=owner,
            project_id=project,
            name=f"{label} {name}",
            mime="text/plain",
            size=1,
            sha256="0" * 64,
            tags=[],
        ).id

    def raid(title: str, **fields: object) -> UUID:
        return app.create_raid_item(
            ctx=owner,
            project_id=project,
            kind=RaidKind.ACTION,
            fields={"title": f"{label} {title}", **fields},
        ).id

    waiting, signed, rejected = stage("waiting"), stage("signed"), stage("rejected")
    renamed = document("old doc")
    changed = raid("old risk")
    due = raid("due soon", due_date="2026-11-30")
    raid("due later", due_date="2026-12-20")

    clock.set(DURING)
    app.request_signoff(ctx=owner, project_id=project, stage_id=waiting, signers=["bob", "carol"])
    app.sign_stage(ctx=bob, project_id=project, stage_id=waiting)
    app.request_signoff(ctx=owner, project_id=project, stage_id=signed, signers=["bob"])
    app.sign_stage(ctx=bob, project_id=project, stage_id=signed)
    app.request_signoff(ctx=owner, project_id=project, stage_id=rejected, signers=["carol"])
    app.reject_stage(ctx=carol, project_id=project, stage_id=rejected, reason=f"{label} not ready")
    new_document = document("new doc")
    app.update_artifact(
        ctx=owner, project_id=project, artifact_id=renamed, name=f"{label} renamed doc"
    )
    new_raid = raid("new issue")
    app.update_raid_item(
        ctx=owner, project_id=project, item_id=changed, fields={"status": "in_progress"}
    )

    clock.set(AFTER)
    late = document("late doc")
    return WeekOfWork(
        org_id=org,
        project_id=project,
        waiting_stage=waiting,
        signed_stage=signed,
        rejected_stage=rejected,
        new_document=new_document,
        renamed_document=renamed,
        late_document=late,
        new_raid=new_raid,
        changed_raid=changed,
        due_raid=due,
    )


def configure_org(
    app: Teaim,
    org: UUID,
    *,
    timezone: str = "Europe/Berlin",
    weekday: Weekday = Weekday.FRI,
    at: str = "09:00",
    when_empty: DigestWhenEmpty = DigestWhenEmpty.SHORT,
) -> None:
    """Set an org's digest settings through its aggregate (the settings API's events)."""
    stamp = Stamp(org, "seed", "seed-comms", datetime.now(UTC))
    aggregate: object = app.repository.get(org)
    assert isinstance(aggregate, Org)
    aggregate.set_timezone(timezone=timezone, stamp=stamp)
    aggregate.set_digest_schedule(weekday=weekday, at=at, stamp=stamp)
    aggregate.set_digest_when_empty(value=when_empty, stamp=stamp)
    app.save(aggregate)


def subscribe(app: Teaim, org: UUID, project: UUID, addresses: Sequence[str]) -> None:
    """Put external addresses on a project's digest list (the subscriptions' events)."""
    stamp = Stamp(org, "seed", "seed-subs", datetime.now(UTC), project_id=project)
    subs = DigestSubscriptions.open(project_id=project, stamp=stamp)
    for address in addresses:
        subs.add_external(address=address, stamp=stamp)
    app.save(subs)


def quiet_project(app: Teaim, org: UUID, code: str, name: str) -> UUID:
    """A project with nothing happening (created long before any digest week)."""
    owner = user("owner", org, Role.ADMIN, "seed")
    return app.create_project(ctx=owner, code=code, name=name).id


CONFIG = AppConfig(
    mail_domain="mail.teaim.test",
    public_base_url="https://teaim.example",
    unsubscribe_key=b"k" * 32,
)


@dataclass
class DigestRig:
    """One "process" of the digest: its own application, pool and service on a test DB."""

    app: Teaim
    db: DigestDatabase
    digests: Digests

    def close(self) -> None:
        """Close the pool and the application."""
        self.db.close()
        self.app.close()


def digest_rig(
    database_url: str, clock: Clock, *, max_projects: int = 200, max_emails: int = 2000
) -> DigestRig:
    """A digest service as a process would build it (owner reads for tick and requests)."""
    app = Teaim(
        DatabaseUrl.parse(database_url).eventsourcing_env(),
        clock=clock,
        secrets=TokenSecrets(),
        audit_log=None,
        config=CONFIG,
    )
    db = DigestDatabase(DatabaseUrl.parse(database_url))
    content = PostgresDigestContent(lambda _orgs: db.transaction())
    digests = Digests(
        source=PostgresDigestSource(db),
        content=content,
        outbox=app,
        guard=app,
        clock=clock,
        config=CONFIG,
        max_projects=max_projects,
        max_emails=max_emails,
    )
    return DigestRig(app=app, db=db, digests=digests)


def queued_digests(database_url: str) -> list[tuple[UUID, UUID | None]]:
    """(email id, project id) of every `Email.Queued` event in the store."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT originator_id, project_id FROM teaim_events WHERE topic LIKE %s",
            ("%Email.Queued",),
        ).fetchall()
    return [(row[0], row[1]) for row in rows]
