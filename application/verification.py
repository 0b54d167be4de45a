"""Verification of the stored history: the walk that checks events, chains, stamps and seals.

One walk serves a project (its events, and any event of its aggregates stamped elsewhere) and
the whole store (every event, in position order, which adds the check that positions are
gap-free: a deleted row leaves a hole no chain shows when it was an aggregate's only event).
Memory is O(aggregates walked): one tip per chain.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from uuid import UUID

import orjson

from application.chain import (
    GENESIS,
    UnhashableEventError,
    UnreadableStampsError,
    chain_link,
    content_hash,
    seal_hash,
    seal_mac_matches,
    stamped_scope,
)
from application.ports import AuditedEvent, AuditLog, ChainHead
from domain.seal import LOG_SEAL_ID, ProjectSeal, scope_seal_id

SEALED_TOPIC = f"{ProjectSeal.__module__}:{ProjectSeal.Sealed.__qualname__}"

# (org, project): the stamps every event of one aggregate carries.
Scope = tuple[UUID, UUID | None]


class BreakKind(StrEnum):
    """What verification found wrong with an event."""

    CONTENT = "content"  # the stored row no longer hashes to its content hash
    CHAIN = "chain"  # the chain hash does not link the event to its predecessor
    GAP = "gap"  # a version of the aggregate is missing
    SEAL = "seal"  # a seal disagrees with the stored chain, or is itself altered
    STAMP = "stamp"  # the event's org/project differ from its own stamps or its aggregate's
    POSITION = "position"  # a position of the log is missing (a deleted row)
    ANCHOR = "anchor"  # no seal in the store has the hash kept outside it


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first broken event: where it shows, which aggregate and version, and why.

    For a gap, `version` is the first missing version and `position` where the gap shows: the
    event after it, or the seal that recorded a version the store no longer holds (a missing
    tail, which only a seal can tell). `position` is None when a seal recorded an event at a
    later position than the store has it, and for an anchor no seal matched.
    """

    kind: BreakKind
    position: int | None
    aggregate_id: UUID
    version: int
    detail: str


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The outcome of verifying one project's history, or the whole store's (ids None)."""

    org_id: UUID | None
    project_id: UUID | None
    events: int
    aggregates: int
    seals: int
    last_position: int
    broken: ChainBreak | None
    # With an anchor: whether a seal with that hash was found (None: no anchor given).
    anchored: bool | None = None

    @property
    def intact(self) -> bool:
        """Whether every event, link, stamp and seal checked out (and the anchor was found)."""
        return self.broken is None


@dataclass(frozen=True, slots=True)
class SealedHead:
    """One chain head as a seal recorded it, read strictly (see `_read_heads`)."""

    version: int
    position: int
    chain_hash: str


@dataclass(slots=True)
class _Tip:
    version: int
    position: int
    chain: bytes
    first_position: int
    scope: Scope


@dataclass
class ChainWalk:
    """State of one verification: the tip of every chain seen so far.

    `scope` is the project walked (None: the whole store, whose positions must then be
    gap-free from 1). With `key`, every seal after `keyed_from` must carry a MAC made with it
    (and any seal that carries one must match). With `anchor`, some seal must have that hash.
    """

    log: AuditLog
    scope: Scope | None
    key: bytes | None = None
    anchor: str | None = None
    # With a key: seals at or before this position may lack a MAC (made before the key).
    keyed_from: int = 0
    events: int = 0
    seals: int = 0
    last_position: int = 0
    anchored: bool = False
    tips: dict[UUID, _Tip] = field(default_factory=dict)
    members: dict[Scope, list[UUID]] = field(default_factory=dict)
    # Every aggregate some seal of the scope pinned so far: an org's seals pin only what
    # changed since the one before, so completeness is over all of a scope's seals.
    pinned: dict[Scope, set[UUID]] = field(default_factory=dict)
    checked: dict[Scope, int] = field(default_factory=dict)
    # The log's members: every scope seal, in the order of its first seal, and where that is.
    sealed_scopes: list[UUID] = field(default_factory=list)
    first_sealed: dict[UUID, int] = field(default_factory=dict)
    previous_seal_hash: dict[UUID, str] = field(default_factory=dict)

    def report(self, broken: ChainBreak | None) -> VerifyReport:
        """The report of the walk so far (call `finish` first for a complete walk)."""
        return VerifyReport(
            org_id=None if self.scope is None else self.scope[0],
            project_id=None if self.scope is None else self.scope[1],
            events=self.events,
            aggregates=len(self.tips),
            seals=self.seals,
            last_position=self.last_position,
            broken=broken,
            anchored=None if self.anchor is None else self.anchored,
        )

    def finish(self) -> ChainBreak | None:
        """Checks that need the whole walk: the anchor was met."""
        if self.anchor is not None and not self.anchored:
            return ChainBreak(
                kind=BreakKind.ANCHOR,
                position=None,
                aggregate_id=LOG_SEAL_ID if self.scope is None else scope_seal_id(*self.scope),
                version=0,
                detail="no seal in the store has the anchored hash: the seals were rewritten",
            )
        return None

    def check(self, event: AuditedEvent) -> ChainBreak | None:
        """Check one event (and, for a seal, what it recorded); the break found, if any."""

        def broken(kind: BreakKind, detail: str, version: int | None = None) -> ChainBreak:
            return ChainBreak(
                kind=kind,
                position=event.position,
                aggregate_id=event.originator_id,
                version=event.originator_version if version is None else version,
                detail=detail,
            )

        self.events += 1
        previous_position, self.last_position = self.last_position, event.position
        if self.scope is None and event.position != previous_position + 1:
            missing = event.position - previous_position - 1
            first = previous_position + 1
            where = f"{first}" if missing == 1 else f"{first}..{event.position - 1}"
            if missing < 1:
                return broken(BreakKind.POSITION, f"position comes after {previous_position}")
            return broken(BreakKind.POSITION, f"position {where} is missing from the log")
        try:
            recomputed = content_hash(
                originator_id=event.originator_id,
                originator_version=event.originator_version,
                topic=event.topic,
                org_id=event.org_id,
                project_id=event.project_id,
                state=event.state,
            )
        except UnhashableEventError as error:
            return broken(BreakKind.CONTENT, f"the stored event cannot be hashed: {error}")
        if recomputed != event.content_hash:
            return broken(BreakKind.CONTENT, "the stored event does not match its content hash")

        scope: Scope = (event.org_id, event.project_id)
        problem = self._check_stamps(event, scope)
        if problem is not None:
            return broken(BreakKind.STAMP, problem)

        tip = self.tips.get(event.originator_id)
        version = event.originator_version
        seen = 0 if tip is None else tip.version
        if version <= seen:
            return broken(BreakKind.CHAIN, f"version {version} comes after version {seen}")
        if version != seen + 1:
            versions = f"{seen + 1}" if version == seen + 2 else f"{seen + 1}..{version - 1}"
            return broken(BreakKind.GAP, f"version {versions} is missing", seen + 1)
        previous = GENESIS if tip is None else tip.chain
        if chain_link(previous, event.content_hash) != event.chain_hash:
            return broken(BreakKind.CHAIN, "the chain hash does not follow from its predecessor")
        if tip is None:
            self.members.setdefault(scope, []).append(event.originator_id)
        self.tips[event.originator_id] = _Tip(
            version=version,
            position=event.position,
            chain=event.chain_hash,
            first_position=event.position if tip is None else tip.first_position,
            scope=scope,
        )
        if event.topic == SEALED_TOPIC:
            self.seals += 1
            return self._check_seal(event, scope)
        return None

    def _check_stamps(self, event: AuditedEvent, scope: Scope) -> str | None:
        """Why the event's org/project columns cannot be trusted (None: they agree)."""
        try:
            own = stamped_scope(event.state)
        except UnreadableStampsError as error:
            return f"the event's own stamps cannot be read: {error}"
        if own != scope:
            return f"the columns say {_scope_text(scope)}, the event's stamps {_scope_text(own)}"
        tip = self.tips.get(event.originator_id)
        if tip is not None and tip.scope != scope:
            return (
                f"stamped {_scope_text(scope)}, its aggregate belongs to {_scope_text(tip.scope)}"
            )
        if self.scope is not None and scope != self.scope:
            return f"stamped {_scope_text(scope)}, outside {_scope_text(self.scope)}"
        return None

    def _check_seal(self, event: AuditedEvent, scope: Scope) -> ChainBreak | None:
        def broken(detail: str) -> ChainBreak:
            return ChainBreak(
                kind=BreakKind.SEAL,
                position=event.position,
                aggregate_id=event.originator_id,
                version=event.originator_version,
                detail=detail,
            )

        if event.originator_id != scope_seal_id(*scope):
            return broken("a seal event outside its scope's seal aggregate")
        try:
            read = _read_seal(event.state, scope)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as error:
            return broken(f"the seal cannot be read: {type(error).__name__}: {error}")
        previous, recorded, mac, through = read.previous, read.recorded, read.mac, read.through
        if previous != self.previous_seal_hash.get(event.originator_id):
            return broken("the seal does not follow its scope's previous seal")
        if read.expected != recorded:
            return broken("the seal's hash does not match the heads it records")
        if self.key is not None:
            if mac is None and event.position > self.keyed_from:
                return broken("the seal carries no MAC, though a seal key is configured")
            if mac is not None and not seal_mac_matches(self.key, recorded, mac):
                return broken("the seal's MAC does not match: it was not made with the seal key")
        self.previous_seal_hash[event.originator_id] = recorded
        if recorded == self.anchor:
            self.anchored = True
        if event.originator_id == LOG_SEAL_ID:
            # The log's members are the scope seals, each from its first seal on.
            members, first = self.sealed_scopes, self.first_sealed.__getitem__
        else:
            self._note_scope_seal(event)
            members, first = self.members.get(scope, []), self._first_position
        return self._check_heads(event.position, through, read.pinned, scope, members, first)

    def _note_scope_seal(self, event: AuditedEvent) -> None:
        if event.originator_id not in self.first_sealed:
            self.first_sealed[event.originator_id] = event.position
            self.sealed_scopes.append(event.originator_id)

    def _first_position(self, aggregate: UUID) -> int:
        return self.tips[aggregate].first_position

    def _check_heads(
        self,
        seal_position: int,
        through: int,
        pinned: dict[UUID, SealedHead],
        scope: Scope,
        members: list[UUID],
        first_position: Callable[[UUID], int],
    ) -> ChainBreak | None:
        """A seal's heads against the chains walked so far (and the store, where they moved)."""
        # Every aggregate of the scope with an event at or before the seal's position must be
        # pinned, by this seal or an earlier one of the scope.
        earlier = self.pinned.setdefault(scope, set())
        earlier.update(pinned)
        # Members are listed in the order they first appeared: those before `checked` were
        # found pinned by an earlier seal, so each member is looked at about once.
        index = self.checked.get(scope, 0)
        while index < len(members) and first_position(members[index]) <= through:
            aggregate = members[index]
            if aggregate not in earlier:
                return ChainBreak(
                    kind=BreakKind.SEAL,
                    position=first_position(aggregate),
                    aggregate_id=aggregate,
                    version=1,
                    detail=f"the seal at position {seal_position} does not know this aggregate",
                )
            index += 1
        self.checked[scope] = index
        # A chain that moved on after the seal read its heads: look its sealed version up.
        moved: list[tuple[UUID, int]] = []
        for aggregate, head in pinned.items():
            current = self.tips.get(aggregate)
            if current is not None and current.position > through:
                moved += [(aggregate, head.version), (aggregate, head.version + 1)]
                continue
            found = (
                None
                if current is None
                else ChainHead(aggregate, current.version, current.position, current.chain)
            )
            problem = _compare_head(aggregate, head, found, seal_position)
            if problem is not None:
                return problem
        links = self.log.chain_links(moved) if moved else {}
        for aggregate, version in moved[::2]:
            stored = links.get((aggregate, version))
            if stored is None:
                # Versions are contiguous up to the tip (the walk checked), so this one is
                # newer than anything stored: the tail was removed.
                stored = ChainHead(aggregate, self.tips[aggregate].version, 0, b"")
            problem = _compare_head(aggregate, pinned[aggregate], stored, seal_position)
            after = links.get((aggregate, version + 1))
            if problem is None and (after is None or after.position <= through):
                problem = ChainBreak(
                    kind=BreakKind.SEAL,
                    position=None if after is None else after.position,
                    aggregate_id=aggregate,
                    version=version + 1,
                    detail=f"the seal at position {seal_position} misplaces this version",
                )
            if problem is not None:
                return problem
        return None


def _scope_text(scope: Scope) -> str:
    org, project = scope
    return f"org {org} and " + ("no project" if project is None else f"project {project}")


def _compare_head(
    aggregate: UUID, head: SealedHead, stored: ChainHead | None, seal_position: int
) -> ChainBreak | None:
    """A sealed head against the stored event at that version (None: it agrees)."""
    version = head.version
    if stored is None or stored.version < version:
        have = 0 if stored is None else stored.version
        return ChainBreak(
            kind=BreakKind.GAP,
            position=seal_position,
            aggregate_id=aggregate,
            version=have + 1,
            detail=(
                f"the seal at position {seal_position} records version {version}, "
                f"the store holds {have or 'none'}"
            ),
        )
    if stored.chain_hash.hex() != head.chain_hash or stored.position != head.position:
        return ChainBreak(
            kind=BreakKind.SEAL,
            position=stored.position,
            aggregate_id=aggregate,
            version=stored.version,
            detail=f"the chain differs from the one sealed at position {seal_position}",
        )
    return None


# What a stored integer may be: the store keeps JSON-safe integers only (I-JSON, RFC 8785).
_MAX_COUNT = 2**53 - 1
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class _ReadSeal:
    pinned: dict[UUID, SealedHead]
    through: int
    previous: str | None
    recorded: str
    mac: str | None
    # The seal hash its fields give (`recorded` must equal it).
    expected: str


def _read_seal(state: bytes, scope: Scope) -> _ReadSeal:
    """A seal event's fields, read strictly before anything uses them: whoever forges a seal
    picks them (ValueError, TypeError or KeyError naming the first that is malformed)."""
    payload = orjson.loads(state)
    if not isinstance(payload, dict):
        raise TypeError("the seal is not an object")
    heads = payload["heads"]
    pinned = _read_heads(heads)
    through = _count(payload["through_position"], "through_position")
    previous = payload["previous_seal_hash"]
    mac = payload.get("seal_mac")
    return _ReadSeal(
        pinned=pinned,
        through=through,
        previous=None if previous is None else _hex(previous, "previous_seal_hash"),
        recorded=_hex(payload["seal_hash"], "seal_hash"),
        mac=None if mac is None else _hex(mac, "seal_mac"),
        expected=seal_hash(
            org_id=scope[0],
            project_id=scope[1],
            through_position=through,
            heads=heads,
            previous_seal_hash=previous,
        ),
    )


def _read_heads(raw: Any) -> dict[UUID, SealedHead]:
    """A seal's heads by aggregate, or ValueError/TypeError naming the first malformed one.

    Keys must be canonical (lowercase, hyphenated) uuids, so no two keys name one aggregate;
    each head an object with a version and a position of 1 to 2^53 - 1 and a SHA-256 hex.
    """
    if not isinstance(raw, dict):
        raise TypeError("heads is not an object")
    heads: dict[UUID, SealedHead] = {}
    for key, head in raw.items():
        aggregate = UUID(key)
        if str(aggregate) != key:
            raise ValueError(f"head key {key[:40]!r} is not a canonical uuid")
        if not isinstance(head, dict):
            raise TypeError(f"the head of {aggregate} is not an object")
        heads[aggregate] = SealedHead(
            version=_count(head.get("version"), f"the version of {aggregate}"),
            position=_count(head.get("position"), f"the position of {aggregate}"),
            chain_hash=_hex(head.get("chain_hash"), f"the chain hash of {aggregate}"),
        )
    return heads


def _count(value: Any, what: str) -> int:
    # bool is an int to Python, not to JSON.
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _MAX_COUNT:
        raise ValueError(f"{what} is not an integer from 1 to 2^53 - 1")
    return value


def _hex(value: Any, what: str) -> str:
    if not isinstance(value, str) or _HEX_DIGEST.fullmatch(value) is None:
        raise ValueError(f"{what} is not a lowercase hex SHA-256")
    return value
