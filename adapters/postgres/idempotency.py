"""Idempotency keys: a retried request replays the first response instead of running twice.

A key is held by a session advisory lock while a request of a live process runs it
(idempotency_locks). A key found pending and not held belongs to a request that ended without
recording its answer: its outcome is then settled from the event store, where every event of
the command carries the key's own correlation id, before anything may run it again.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from uuid import UUID

import orjson
from psycopg.errors import LockNotAvailable
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
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.exc import DBAPIError

from adapters.postgres.idempotency_locks import KeyLocks, lock_id
from domain.denial import SecurityDenial

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
    Column("correlation_id", Text),  # migration 0013
)


# Correlation ids of idempotent requests: "idem-" and 32 hex digits. Migration 0013 indexes
# the 32 digits found after this marker in an event's stored state (JSON without spaces).
CORRELATION_PREFIX = "idem-"
_TOKEN_LENGTH = 32
# Refusals recorded while a command was refused: not the command's outcome (a re-run records
# the same refusal again, and changes nothing else).
_NOT_AN_OUTCOME_TOPIC_PREFIX = f"{SecurityDenial.__module__}:{SecurityDenial.__qualname__}."
# A command writes a handful of events; more under one correlation id is not ours to read.
_MAX_OUTCOME_EVENTS = 1000
# How long a settle waits for an append still in flight (the event table's EXCLUSIVE lock).
_SETTLE_LOCK_TIMEOUT = "5s"


def new_correlation_id() -> str:
    """A correlation id no other request carries, stamped on every event of the command."""
    return CORRELATION_PREFIX + uuid.uuid4().hex


@dataclass(frozen=True)
class CommittedEvent:
    """An event a key's command committed (its answer is derived from these)."""

    position: int
    originator_id: UUID
    originator_version: int
    topic: str


@dataclass(frozen=True)
class Reserved:
    """The key is now held by this request: run it with this correlation id, then complete(),
    release() (nothing was written), settle_failed() (it failed) or abandon() the key."""

    correlation_id: str = ""


@dataclass(frozen=True)
class Committed:
    """The key's command committed these events but its answer was never recorded: derive the
    answer from them and complete() the key (which this request now holds)."""

    events: tuple[CommittedEvent, ...]


@dataclass(frozen=True)
class Replay:
    """The key's request already finished: answer with its recorded response."""

    status_code: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class InProgress:
    """A live request holding the same key has not finished yet."""


@dataclass(frozen=True)
class FingerprintMismatch:
    """The key was first used for a different request (method, path or body)."""


Reservation = Reserved | Committed | Replay | InProgress | FingerprintMismatch


class IdempotencyKeyNotPendingError(Exception):
    """complete() was called for a key that is not reserved (released, or already complete)."""


class PostgresIdempotencyStore:
    """Idempotency keys per org and principal, in the `idempotency_keys` table."""

    def __init__(self, engine: Engine, *, pending_timeout: timedelta | None = None) -> None:
        # pending_timeout is no longer used: whether a pending key's request still runs is
        # known from its advisory lock, never guessed from its age. Accepted for callers.
        del pending_timeout
        self._engine = engine
        self._locks = KeyLocks(engine)

    def close(self) -> None:
        """Let go of every key this process holds (its requests are over)."""
        self._locks.close()

    def reserve(self, org_id: UUID, principal: str, key: str, fingerprint: str) -> Reservation:
        """Claim the key for a request, or say why it cannot run now."""
        pk = _pk(org_id, principal, key)
        with self._engine.connect() as conn:
            # A finished key answers without touching its lock, so replays never queue.
            row = conn.execute(_select_row(pk)).first()
        if row is not None and (row.fingerprint != fingerprint or row.state == "done"):
            return _judged(row, fingerprint)
        lock = lock_id(org_id, principal, key)
        if not self._locks.try_hold(lock):
            return InProgress()
        try:
            outcome = self._reserve_held(org_id, principal, key, fingerprint)
        except DBAPIError as error:
            self._locks.let_go(lock)
            if isinstance(error.orig, LockNotAvailable):
                # Appends kept the event table busy past the settle's lock timeout.
                return InProgress()
            raise
        except BaseException:
            self._locks.let_go(lock)
            raise
        if not isinstance(outcome, Reserved | Committed):
            self._locks.let_go(lock)
        return outcome

    def _reserve_held(
        self, org_id: UUID, principal: str, key: str, fingerprint: str
    ) -> Reservation:
        pk = _pk(org_id, principal, key)
        correlation_id = new_correlation_id()
        with self._engine.begin() as conn:
            inserted: Row[Any] | None = conn.execute(
                insert(idempotency_keys)
                .values(
                    **_pk_values(org_id, principal, key),
                    fingerprint=fingerprint,
                    state="pending",
                    correlation_id=correlation_id,
                )
                .on_conflict_do_nothing()
                .returning(literal_column("1"))
            ).first()
            if inserted is not None:
                return Reserved(correlation_id)
            row = conn.execute(_select_row(pk).with_for_update()).first()
            if row is None:
                # Released between our insert and our read: the caller retries afresh.
                return InProgress()
            if row.fingerprint != fingerprint or row.state == "done":
                return _judged(row, fingerprint)
            # Pending, and no live request holds it (we do now): its request ended without an
            # answer. Its events tell whether it committed; only if not may it run again.
            if row.correlation_id is not None:
                events = self._committed(conn, org_id, row.correlation_id)
                if events:
                    return Committed(events)
                correlation_id = row.correlation_id
            conn.execute(
                update(idempotency_keys)
                .where(pk)
                .values(created_at=func.now(), correlation_id=correlation_id)
            )
            return Reserved(correlation_id)

    def _committed(
        self, conn: Connection, org_id: UUID, correlation_id: str
    ) -> tuple[CommittedEvent, ...]:
        """The events of the org stamped with this correlation id, once no append is running.

        SHARE conflicts with the EXCLUSIVE lock every append holds until it commits: an append
        of the ended request still in flight (its connection died, not its transaction) has
        ended, committed or not, before we read.
        """
        token = correlation_id.removeprefix(CORRELATION_PREFIX)
        if len(token) != _TOKEN_LENGTH or not correlation_id.startswith(CORRELATION_PREFIX):
            return ()
        conn.execute(text(f"SET LOCAL lock_timeout = '{_SETTLE_LOCK_TIMEOUT}'"))
        conn.execute(text("LOCK TABLE teaim_events IN SHARE MODE"))
        rows = conn.execute(
            text(
                "SELECT notification_id, originator_id, originator_version, topic, state"
                " FROM teaim_events"
                " WHERE org_id = :org AND teaim_idempotency_token(state) = :token"
                " ORDER BY notification_id LIMIT :limit"
            ),
            {"org": org_id, "token": token.encode("ascii"), "limit": _MAX_OUTCOME_EVENTS},
        ).all()
        events: list[CommittedEvent] = []
        for row in rows:
            refusal = row.topic.startswith(_NOT_AN_OUTCOME_TOPIC_PREFIX)
            if refusal or not _stamped_with(row.state, correlation_id):
                continue
            events.append(
                CommittedEvent(
                    position=int(row.notification_id),
                    originator_id=row.originator_id,
                    originator_version=int(row.originator_version),
                    topic=row.topic,
                )
            )
        return tuple(events)

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
        try:
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
                    msg = (
                        f"idempotency key {key!r} of {principal!r} in org {org_id} is not reserved"
                    )
                    raise IdempotencyKeyNotPendingError(msg)
        finally:
            self._locks.let_go(lock_id(org_id, principal, key))

    def release(self, org_id: UUID, principal: str, key: str) -> None:
        """Forget a reservation whose request is known to have written nothing."""
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    delete(idempotency_keys).where(
                        _pk(org_id, principal, key), idempotency_keys.c.state == "pending"
                    )
                )
        finally:
            self._locks.let_go(lock_id(org_id, principal, key))

    def settle_failed(
        self, org_id: UUID, principal: str, key: str, correlation_id: str
    ) -> tuple[CommittedEvent, ...]:
        """After a failure: the events the command committed anyway (the caller then completes
        the key with the answer they give), or none, and the key is released for a retry.

        If the store cannot be read, the key stays pending and the next retry settles it.
        """
        lock = lock_id(org_id, principal, key)
        try:
            with self._engine.begin() as conn:
                events = self._committed(conn, org_id, correlation_id)
                if not events:
                    conn.execute(
                        delete(idempotency_keys).where(
                            _pk(org_id, principal, key), idempotency_keys.c.state == "pending"
                        )
                    )
        except DBAPIError:
            self._locks.let_go(lock)
            raise
        if not events:
            self._locks.let_go(lock)
        return events

    def abandon(self, org_id: UUID, principal: str, key: str) -> None:
        """Let go of the key, leaving it pending: a retry settles it from the event store."""
        self._locks.let_go(lock_id(org_id, principal, key))


def _select_row(pk: Any) -> Any:
    return select(
        idempotency_keys.c.fingerprint,
        idempotency_keys.c.state,
        idempotency_keys.c.status_code,
        idempotency_keys.c.response_body,
        idempotency_keys.c.response_headers,
        idempotency_keys.c.correlation_id,
    ).where(pk)


def _judged(row: Row[Any], fingerprint: str) -> Reservation:
    if row.fingerprint != fingerprint:
        return FingerprintMismatch()
    return Replay(
        status_code=int(row.status_code),
        body=bytes(row.response_body or b""),
        headers=dict(row.response_headers or {}),
    )


def _stamped_with(state: bytes, correlation_id: str) -> bool:
    # The index finds the marker anywhere in the state; only the event's own stamp counts.
    try:
        document = orjson.loads(state)
    except orjson.JSONDecodeError:
        return False
    return isinstance(document, dict) and document.get("correlation_id") == correlation_id


def _pk_values(org_id: UUID, principal: str, key: str) -> dict[str, Any]:
    return {"org_id": org_id, "principal": principal, "key": key}


def _pk(org_id: UUID, principal: str, key: str) -> Any:
    return and_(
        idempotency_keys.c.org_id == org_id,
        idempotency_keys.c.principal == principal,
        idempotency_keys.c.key == key,
    )
