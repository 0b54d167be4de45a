"""Wiring of the weekly digest: its owner pool, queries, the service and its job."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from uuid import UUID

from psycopg import Cursor
from psycopg.rows import DictRow

from adapters.postgres.digest_db import DigestDatabase
from adapters.postgres.digest_source import PostgresDigestSource
from adapters.postgres.queries.digest_content import PostgresDigestContent
from adapters.postgres.read_db import ReadDatabase
from application.app import Teaim
from application.digests import DEFAULT_MAX_EMAILS, Digests
from application.ports import Clock


def build_digests(
    app: Teaim,
    digest_db: DigestDatabase,
    read_db: ReadDatabase,
    clock: Clock,
    *,
    max_projects: int,
    max_emails: int = DEFAULT_MAX_EMAILS,
) -> Digests:
    """The digest service: the tick reads many orgs through `digest_db` (owner, every query
    naming its tenants); a request reads its own org through `read_db` (row-level security)."""

    def owner_cursor(_orgs: frozenset[UUID]) -> AbstractContextManager[Cursor[DictRow]]:
        return digest_db.transaction()

    @contextmanager
    def tenant_cursor(orgs: frozenset[UUID]) -> Iterator[Cursor[DictRow]]:
        if len(orgs) != 1:
            raise ValueError("a request reads exactly one org's digest")
        with read_db.tenant(next(iter(orgs))) as cur:
            yield cur

    return Digests(
        source=PostgresDigestSource(digest_db),
        content=PostgresDigestContent(owner_cursor),
        request_content=PostgresDigestContent(tenant_cursor),
        outbox=app,
        guard=app,
        clock=clock,
        config=app.config,
        max_projects=max_projects,
        max_emails=max_emails,
    )
