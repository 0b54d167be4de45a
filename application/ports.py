"""Ports the application needs from the outside world; adapters implement them.

Every port reaches the application through its constructor (`TeaimBase.__init__`): an
application that exists is fully wired, so no command can run against a half-built one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID


class Clock(Protocol):
    """Tells the current time (timezone-aware)."""

    def now(self) -> datetime:
        """The current instant."""
        ...


class SecretSource(Protocol):
    """Makes unguessable tokens."""

    def token(self, nbytes: int) -> str:
        """A URL-safe token carrying `nbytes` random bytes."""
        ...


@dataclass(frozen=True, slots=True)
class AuditedEvent:
    """One row of the event store, exactly as stored, hashes included."""

    position: int
    originator_id: UUID
    originator_version: int
    topic: str
    state: bytes
    org_id: UUID
    project_id: UUID | None
    content_hash: bytes
    chain_hash: bytes
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class ChainHead:
    """Where one aggregate's chain stands: its newest version, that event's position and hash."""

    originator_id: UUID
    version: int
    position: int
    chain_hash: bytes


class AuditLog(Protocol):
    """Reads of the raw event store for auditors and the sealer (implemented by adapters)."""

    def project_events(
        self, org_id: UUID, project_id: UUID
    ) -> AbstractContextManager[Iterator[AuditedEvent]]:
        """The project's events in position order, streamed (close the context when done).

        Besides the events stamped with the project, it holds every event of the project's
        aggregates stamped otherwise (a forged version with another or no project): the
        repository loads an aggregate by its id, whatever the stamps say.
        """
        ...

    def all_events(self) -> AbstractContextManager[Iterator[AuditedEvent]]:
        """Every event of the store in position order, streamed (operators only)."""
        ...

    def scope_heads(
        self, org_id: UUID, project_id: UUID | None, after: int = 0, through: int | None = None
    ) -> list[ChainHead]:
        """The newest event up to position `through` (None: the newest of all) of every
        aggregate stamped with this org and project (None: no project) that has an event after
        position `after`, all read in one snapshot."""
        ...

    def scope_cut(
        self, org_id: UUID, project_id: UUID | None, after: int, count: int, excluding: UUID
    ) -> int | None:
        """The position of the scope's `count`-th event after position `after`, not counting
        the events of aggregate `excluding` (None: fewer)."""
        ...

    def seal_heads_after(self, position: int, topic: str) -> list[ChainHead]:
        """The newest event of `topic` of every seal aggregate but the log's with one after
        `position`, all read in one snapshot."""
        ...

    def chain_links(self, keys: Sequence[tuple[UUID, int]]) -> dict[tuple[UUID, int], ChainHead]:
        """The stored (position, chain hash) of these (aggregate, version) keys, where found."""
        ...

    def projects_changed_after(self, position: int) -> list[tuple[UUID, UUID]]:
        """(org id, project id) of every project with an event after `position`."""
        ...

    def orgs_changed_after(self, position: int) -> list[UUID]:
        """Every org with an event stamped with no project after `position`."""
        ...

    def project_org(self, project_id: UUID) -> UUID | None:
        """The org a project's events belong to (None when it has none)."""
        ...

    def last_position(self) -> int:
        """The newest position in the store (0 when empty)."""
        ...


@dataclass(frozen=True, slots=True)
class StoredBlob:
    """What storing a blob measured on the way: its size and SHA-256 (hex)."""

    size: int
    sha256: str


class BlobTooLargeError(Exception):
    """The source gave more bytes than the limit allowed; nothing was stored."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(f"blob exceeds {max_bytes} bytes")
        self.max_bytes = max_bytes


class BlobNotFoundError(Exception):
    """No blob is stored under the key."""


class BlobRangeError(Exception):
    """The byte range starts at or past the blob's end (HTTP 416)."""


class BlobStore(Protocol):
    """Stores files' bytes by key (build keys with `domain.blob_keys.blob_key`).

    Implementations stream: no blob is ever held whole in memory.
    """

    def put(self, key: str, chunks: Iterable[bytes], *, max_bytes: int) -> StoredBlob:
        """Store the chunks under `key`, measuring size and SHA-256 on the way. Beyond
        `max_bytes`: BlobTooLargeError; on that or any error (the source's included) nothing
        is left stored under `key`."""
        ...

    def open_range(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Bytes `start` through `end` (inclusive; None: to the end) as chunks; an `end` past
        the blob is cut to it. BlobNotFoundError, or BlobRangeError when `start` is past it."""
        ...

    def size(self, key: str) -> int | None:
        """The blob's size in bytes (None: no blob)."""
        ...

    def exists(self, key: str) -> bool:
        """Whether a blob is stored under `key`."""
        ...

    def delete(self, key: str) -> None:
        """Remove the blob (no error when there is none)."""
        ...
