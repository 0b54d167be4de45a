"""Idempotency keys: a retried request replays the first response instead of running twice."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    Row,
    Table,
    Text,
    Uuid,
    and_,
    delete,
    func,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, insert

_metadata = MetaData()

# Mirrors migration 0001_event_store; Alembic owns the table, this only names its columns.
idempotency_keys = Table(
    "idempotency_keys",
    _metadata,
    Column("org_id", Uuid(as_uuid=True), primary_key=True),
    Column("principal", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("fingerprint", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("status_code", Integer),
    Column("response_body", LargeBinary),
    Column("response_headers", JSONB),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("completed_at", DateTime(timezone=True)),
)


@dataclass(frozen=True)
class Reserved:
    """The key is now held by this request: run it, then complete() or release() the key."""


@dataclass(frozen=True)
class Replay:
    """The key's request already finished: answer with its recorded response."""

    status_code: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class InProgress:
    """Another request holding the same key has not finished yet."""


@dataclass(frozen=True)
class FingerprintMismatch:
    """The key was first used for a different request (method, path or body)."""


Reservation = Reserved | Replay | InProgress | FingerprintMismatch


class IdempotencyKeyNotPendingError(Exception):
    """complete() was called for a key that is not reserved (released, or already complete)."""


class PostgresIdempotencyStore:
    """Idempotency keys per org and principal, in the `idempotency_keys` table."""

    def __init__(self, engine: Engine, *, pending_timeout: timedelta | None = None) -> None:
        # pending_timeout: a reservation older than this is taken to belong to a request that
        # died without releasing it, and may be taken over. None: never (a stuck key stays
        # InProgress until released).
        self._engine = engine
        self._pending_timeout = pending_timeout

    def reserve(self, org_id: UUID, principal: str, key: str, fingerprint: str) -> Reservation:
        """Claim the key for a request, or say why it cannot run now."""
        with self._engine.begin() as conn:
            # A reservation released between our insert and our read frees the key again, so
            # try again; racing that often for one key is implausible, hence the small bound.
            for _ in range(3):
                inserted: Row[Any] | None = conn.execute(
                    insert(idempotency_keys)
                    .values(
                        **_pk_values(org_id, principal, key),
                        fingerprint=fingerprint,
                        state="pending",
                    )
                    .on_conflict_do_nothing()
                    .returning(literal_column("1"))
                ).first()
                if inserted is not None:
                    return Reserved()
                # FOR UPDATE waits out a concurrent complete() or release() of the key, so we
                # judge a settled row.
                row = conn.execute(
                    select(
                        idempotency_keys.c.fingerprint,
                        idempotency_keys.c.state,
                        idempotency_keys.c.status_code,
                        idempotency_keys.c.response_body,
                        idempotency_keys.c.response_headers,
                        (func.now() - idempotency_keys.c.created_at).label("age"),
                    )
                    .where(_pk(org_id, principal, key))
                    .with_for_update()
                ).first()
                if row is not None:
                    return self._judge(conn, row, _pk(org_id, principal, key), fingerprint)
        return InProgress()

    def _judge(self, conn: Connection, row: Row[Any], pk: Any, fingerprint: str) -> Reservation:
        if row.fingerprint != fingerprint:
            return FingerprintMismatch()
        if row.state == "done":
            return Replay(
                status_code=int(row.status_code),
                body=bytes(row.response_body or b""),
                headers=dict(row.response_headers or {}),
            )
        if self._pending_timeout is not None and row.age > self._pending_timeout:
            conn.execute(update(idempotency_keys).where(pk).values(created_at=func.now()))
            return Reserved()
        return InProgress()

    def complete(
        self,
        org_id: UUID,
        principal: str,
        key: str,
        *,
        status_code: int,
        body: bytes,
        headers: Mapping[str, str],
    ) -> None:
        """Record the response of the request holding the key, for later replays."""
        with self._engine.begin() as conn:
            result = conn.execute(
                update(idempotency_keys)
                .where(_pk(org_id, principal, key), idempotency_keys.c.state == "pending")
                .values(
                    state="done",
                    status_code=status_code,
                    response_body=body,
                    response_headers=dict(headers),
                    completed_at=func.now(),
                )
            )
            if result.rowcount != 1:
                msg = f"idempotency key {key!r} of {principal!r} in org {org_id} is not reserved"
                raise IdempotencyKeyNotPendingError(msg)

    def release(self, org_id: UUID, principal: str, key: str) -> None:
        """Forget a reservation whose request failed, so a retry can run it afresh."""
        with self._engine.begin() as conn:
            conn.execute(
                delete(idempotency_keys).where(
                    _pk(org_id, principal, key), idempotency_keys.c.state == "pending"
                )
            )


def _pk_values(org_id: UUID, principal: str, key: str) -> dict[str, Any]:
    return {"org_id": org_id, "principal": principal, "key": key}


def _pk(org_id: UUID, principal: str, key: str) -> Any:
    return and_(
        idempotency_keys.c.org_id == org_id,
        idempotency_keys.c.principal == principal,
        idempotency_keys.c.key == key,
    )
