"""Auditors' commands: seal projects, verify their hash chains, replay and rebuild history."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.application import project_aggregate
from eventsourcing.domain import EventSourcingError

from application.base import TeaimBase
from application.chain import (
    GENESIS,
    UnhashableEventError,
    chain_link,
    content_hash,
    seal_hash,
)
from application.context import CommandContext, Principal
from application.ports import AuditedEvent, AuditLog, ChainHead
from application.results import CommandResult
from application.stored import StampedStoredEvent
from domain.base import TeaimAggregate
from domain.errors import InvalidValueError, NotFoundError, RuleViolationError
from domain.project import Project
from domain.roles import Permission, Role
from domain.seal import ProjectSeal, seal_id_for
from domain.signoff import SignOff
from domain.stage import Stage

# The audit log port and its records live with the other ports (application.ports); they are
# exported here too because adapters and routes know them as the auditors' vocabulary.
__all__ = [
    "SEALED_TOPIC",
    "SEALER",
    "AuditLog",
    "AuditedEvent",
    "AuditingCommands",
    "BreakKind",
    "ChainBreak",
    "ChainHead",
    "ProjectAsOf",
    "SealFailure",
    "SealRun",
    "VerifyReport",
]

# Whoever seals on a timer: the reserved `service:` prefix keeps it apart from every user.
SEALER = "service:sealer"
SEALED_TOPIC = f"{ProjectSeal.__module__}:{ProjectSeal.Sealed.__qualname__}"
# The aggregates an as-of view rebuilds, by the topic prefix of their events.
_AS_OF_TOPICS = tuple(f"{cls.__module__}:{cls.__qualname__}." for cls in (Project, Stage, SignOff))


# Results -----------------------------------------------------------------------------------


class BreakKind(StrEnum):
    """What verification found wrong with an event."""

    CONTENT = "content"  # the stored row no longer hashes to its content hash
    CHAIN = "chain"  # the chain hash does not link the event to its predecessor
    GAP = "gap"  # a version of the aggregate is missing
    SEAL = "seal"  # a seal disagrees with the stored chain, or is itself altered


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first broken event: where it shows, which aggregate and version, and why.

    For a gap, `version` is the first missing version and `position` where the gap shows: the
    event after it, or the seal that recorded a version the store no longer holds (a missing
    tail, which only a seal can tell). `position` is None only when a seal recorded an event
    at a later position than the store has it.
    """

    kind: BreakKind
    position: int | None
    aggregate_id: UUID
    version: int
    detail: str


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The outcome of verifying one project's history."""

    org_id: UUID
    project_id: UUID
    events: int
    aggregates: int
    seals: int
    last_position: int
    broken: ChainBreak | None

    @property
    def intact(self) -> bool:
        """Whether every event, link and seal checked out."""
        return self.broken is None


@dataclass(frozen=True, slots=True)
class SealFailure:
    """One project the sealer could not seal, and why (the exception's class and message)."""

    org_id: UUID
    project_id: UUID
    error: str


@dataclass(frozen=True, slots=True)
class SealRun:
    """What one pass of the periodic sealer did."""

    through_position: int
    sealed: list[UUID]
    unchanged: list[UUID]
    failed: list[UUID]
    failures: list[SealFailure] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ProjectAsOf:
    """A project, its stages and their sign-off rounds, as they stood at `at`."""

    at: datetime
    project: Project
    stages: list[Stage]
    signoffs: dict[UUID, list[SignOff]]


# Commands ----------------------------------------------------------------------------------


class AuditingCommands(TeaimBase):
    """Seals, chain verification, raw history and point-in-time views of a project."""

    def audit_project(self, *, ctx: CommandContext, project_id: UUID, action: str) -> Project:
        """The project, if the caller holds the AUDIT permission in it (else 404/403, recorded)."""
        project, _ = self._guard_project(ctx, project_id, Permission.AUDIT, action=action)
        return project

    def project_history(
        self, *, org_id: UUID, project_id: UUID
    ) -> AbstractContextManager[Iterator[AuditedEvent]]:
        """The project's raw events in position order (authorize with `audit_project` first)."""
        return self._log().project_events(org_id, project_id)

    def project_org(self, project_id: UUID) -> UUID | None:
        """The org a project belongs to, read from its events (for operator tools)."""
        return self._log().project_org(project_id)

    # Seals ---------------------------------------------------------------------------------

    def seal_project(self, *, ctx: CommandContext, project_id: UUID) -> CommandResult:
        """Record the head of every chain of the project (position 0: nothing new to seal)."""
        self._guard_project(ctx, project_id, Permission.AUDIT, action="audit.seal")
        org_id = ctx.principal.org_id
        found = self._find(ProjectSeal, seal_id_for(project_id))
        stamp = self._stamp(ctx, project_id)
        seal = found or ProjectSeal.start(project_id=project_id, stamp=stamp)
        heads: dict[str, dict[str, Any]] = {
            str(head.originator_id): {
                "version": head.version,
                "position": head.position,
                "chain_hash": head.chain_hash.hex(),
            }
            for head in self._log().project_heads(org_id, project_id)
        }
        if seal.is_current(heads):
            return CommandResult(id=seal.id, position=0)
        through = max(int(head["position"]) for head in heads.values())
        seal.seal(
            heads=heads,
            through_position=through,
            seal_hash=seal_hash(
                org_id=org_id,
                project_id=project_id,
                through_position=through,
                heads=heads,
                previous_seal_hash=seal.last_seal_hash,
            ),
            stamp=stamp,
        )
        return CommandResult(id=seal.id, position=self._commit(seal))

    def seal_all_projects(self, *, since_position: int = 0, correlation_id: str) -> SealRun:
        """Seal every project with events after `since_position`, each as its own org's service.

        Idempotent: a project whose last seal covers it is left alone, and a seal racing another
        sealer loses harmlessly (it conflicts on the seal aggregate's version). Each project is
        sealed on its own: whatever one project's sealing raises is recorded in the run's
        `failures` and the pass goes on with the others.
        """
        log = self._log()
        through = log.last_position()
        sealed: list[UUID] = []
        unchanged: list[UUID] = []
        failed: list[UUID] = []
        failures: list[SealFailure] = []
        for org_id, project_id in log.projects_changed_after(since_position):
            ctx = CommandContext(
                principal=Principal(
                    user_id=SEALER, org_id=org_id, org_role=Role.OWNER, is_service=True
                ),
                correlation_id=correlation_id,
            )
            try:
                result = self.seal_project(ctx=ctx, project_id=project_id)
            except Exception as error:  # one project never stops the others
                # A lost race (IntegrityError), a vanished project, or a history that no longer
                # loads: the caller records it (run status, telemetry) and the next pass retries.
                failed.append(project_id)
                failures.append(SealFailure(org_id, project_id, _error_text(error)))
                continue
            (sealed if result.position else unchanged).append(project_id)
        return SealRun(
            through_position=through,
            sealed=sealed,
            unchanged=unchanged,
            failed=failed,
            failures=failures,
        )

    # Verification --------------------------------------------------------------------------

    def verify_project(
        self,
        *,
        org_id: UUID,
        project_id: UUID,
        progress: Callable[[int], None] | None = None,
        progress_every: int = 1000,
    ) -> VerifyReport:
        """Walk the project's events in position order; the first broken one, or intact.

        Each event's content hash is recomputed from the stored row, each chain link from its
        predecessor, and each seal's recorded heads are compared with the stored chains.
        Authorize the caller first (`audit_project`); operators call this directly.
        """
        walk = _ChainWalk(org_id, project_id, self._log())
        with self._log().project_events(org_id, project_id) as events:
            for event in events:
                broken = walk.check(event)
                if broken is not None:
                    return walk.report(broken)
                if progress is not None and walk.events % progress_every == 0:
                    progress(walk.events)
        if progress is not None:
            progress(walk.events)
        return walk.report(None)

    # Point in time -------------------------------------------------------------------------

    def project_as_of(
        self, *, ctx: CommandContext, project_id: UUID, at: datetime | None = None
    ) -> ProjectAsOf:
        """The project, its stages and sign-offs folded from their events stamped <= `at` (now)."""
        at = self.clock.now() if at is None else at
        if at.tzinfo is None or at.utcoffset() is None:
            raise InvalidValueError("the instant must carry a timezone")
        self._guard_project(ctx, project_id, Permission.READ, action="project.as_of")
        folded: dict[UUID, Any] = {}
        later: set[UUID] = set()
        with self._log().project_events(ctx.principal.org_id, project_id) as events:
            for row in events:
                if not row.topic.startswith(_AS_OF_TOPICS) or row.originator_id in later:
                    continue
                event = self.mapper.to_domain_event(
                    StampedStoredEvent(
                        originator_id=row.originator_id,
                        originator_version=row.originator_version,
                        topic=row.topic,
                        state=row.state,
                        org_id=row.org_id,
                        project_id=row.project_id,
                    )
                )
                if not isinstance(event, TeaimAggregate.Event) or event.timestamp > at:
                    # An aggregate stops at its first later event, even if a (skewed) clock
                    # stamped a still later version earlier: versions only apply in order.
                    later.add(row.originator_id)
                    continue
                try:
                    folded[row.originator_id] = project_aggregate(
                        folded.get(row.originator_id), [event]
                    )
                except (EventSourcingError, AssertionError) as error:
                    raise RuleViolationError(
                        "the stored history cannot be replayed; run `teaim audit verify`",
                        project_id=project_id,
                    ) from error
        project = folded.get(project_id)
        if not isinstance(project, Project):
            raise NotFoundError("project did not exist at that time", project_id=project_id)
        stages = sorted(
            (a for a in folded.values() if isinstance(a, Stage)),
            key=lambda stage: (stage.order, stage.created_on, str(stage.id)),
        )
        signoffs: dict[UUID, list[SignOff]] = {stage.id: [] for stage in stages}
        for aggregate in folded.values():
            if isinstance(aggregate, SignOff) and aggregate.stage_id in signoffs:
                signoffs[aggregate.stage_id].append(aggregate)
        for rounds in signoffs.values():
            rounds.sort(key=lambda signoff: signoff.round)
        return ProjectAsOf(at=at, project=project, stages=stages, signoffs=signoffs)

    def _log(self) -> AuditLog:
        if self.audit_log is None:
            raise RuntimeError("this application was built without an audit log (audit_log=None)")
        return self.audit_log


def _error_text(error: BaseException) -> str:
    """An exception as a run record shows it: class and message, bounded in length."""
    return f"{type(error).__name__}: {error}"[:300]


# The verification walk -----------------------------------------------------------------------


@dataclass(slots=True)
class _Tip:
    version: int
    position: int
    chain: bytes
    first_position: int


@dataclass
class _ChainWalk:
    """State of one verification: the tip of every chain seen so far (O(aggregates) memory)."""

    org_id: UUID
    project_id: UUID
    log: AuditLog
    events: int = 0
    seals: int = 0
    last_position: int = 0
    tips: dict[UUID, _Tip] = field(default_factory=dict)
    previous_seal_hash: str | None = None

    def report(self, broken: ChainBreak | None) -> VerifyReport:
        return VerifyReport(
            org_id=self.org_id,
            project_id=self.project_id,
            events=self.events,
            aggregates=len(self.tips),
            seals=self.seals,
            last_position=self.last_position,
            broken=broken,
        )

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
        self.last_position = event.position
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

        tip = self.tips.get(event.originator_id)
        version = event.originator_version
        seen = 0 if tip is None else tip.version
        if version <= seen:
            return broken(BreakKind.CHAIN, f"version {version} comes after version {seen}")
        if version != seen + 1:
            missing = f"{seen + 1}" if version == seen + 2 else f"{seen + 1}..{version - 1}"
            return broken(BreakKind.GAP, f"version {missing} is missing", seen + 1)
        previous = GENESIS if tip is None else tip.chain
        if chain_link(previous, event.content_hash) != event.chain_hash:
            return broken(BreakKind.CHAIN, "the chain hash does not follow from its predecessor")
        self.tips[event.originator_id] = _Tip(
            version=version,
            position=event.position,
            chain=event.chain_hash,
            first_position=event.position if tip is None else tip.first_position,
        )
        if event.topic == SEALED_TOPIC:
            self.seals += 1
            return self._check_seal(event)
        return None

    def _check_seal(self, event: AuditedEvent) -> ChainBreak | None:
        def broken(detail: str) -> ChainBreak:
            return ChainBreak(
                kind=BreakKind.SEAL,
                position=event.position,
                aggregate_id=event.originator_id,
                version=event.originator_version,
                detail=detail,
            )

        if event.originator_id != seal_id_for(self.project_id):
            return broken("a seal event outside the project's seal aggregate")
        try:
            payload = orjson.loads(event.state)
            heads: dict[str, dict[str, Any]] = payload["heads"]
            through = int(payload["through_position"])
            previous = payload["previous_seal_hash"]
            recorded = str(payload["seal_hash"])
            expected = seal_hash(
                org_id=self.org_id,
                project_id=self.project_id,
                through_position=through,
                heads=heads,
                previous_seal_hash=previous,
            )
            pinned = {UUID(aggregate): head for aggregate, head in heads.items()}
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as error:
            return broken(f"the seal cannot be read: {type(error).__name__}: {error}")
        if previous != self.previous_seal_hash:
            return broken("the seal does not follow the project's previous seal")
        if expected != recorded:
            return broken("the seal's hash does not match the heads it records")
        self.previous_seal_hash = recorded
        return self._check_heads(event.position, through, pinned)

    def _check_heads(
        self, seal_position: int, through: int, pinned: dict[UUID, dict[str, Any]]
    ) -> ChainBreak | None:
        """A seal's heads against the chains walked so far (and the store, where they moved)."""
        # Every aggregate with an event at or before the seal's position must be pinned.
        for aggregate, tip in self.tips.items():
            if tip.first_position <= through and aggregate not in pinned:
                return ChainBreak(
                    kind=BreakKind.SEAL,
                    position=tip.first_position,
                    aggregate_id=aggregate,
                    version=1,
                    detail=f"the seal at position {seal_position} does not know this aggregate",
                )
        # A chain that moved on after the seal read its heads: look its sealed version up.
        moved: list[tuple[UUID, int]] = []
        for aggregate, head in pinned.items():
            current = self.tips.get(aggregate)
            if current is not None and current.position > through:
                moved += [(aggregate, int(head["version"])), (aggregate, int(head["version"]) + 1)]
                continue
            found = (
                None
                if current is None
                else ChainHead(aggregate, current.version, current.position, current.chain)
            )
            problem = _compare_head(aggregate, head, found, seal_position)
            if problem is not None:
                return problem
        links = self.log.chain_links(self.org_id, self.project_id, moved) if moved else {}
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


def _compare_head(
    aggregate: UUID, head: dict[str, Any], stored: ChainHead | None, seal_position: int
) -> ChainBreak | None:
    """A sealed head against the stored event at that version (None: it agrees)."""
    version = int(head["version"])
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
    if stored.chain_hash.hex() != head["chain_hash"] or stored.position != int(head["position"]):
        return ChainBreak(
            kind=BreakKind.SEAL,
            position=stored.position,
            aggregate_id=aggregate,
            version=stored.version,
            detail=f"the chain differs from the one sealed at position {seal_position}",
        )
    return None
