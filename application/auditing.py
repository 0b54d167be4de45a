"""Auditors' commands: seal projects, verify their hash chains, replay and rebuild history."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import project_aggregate
from eventsourcing.domain import EventSourcingError

from application.base import TeaimBase
from application.chain import seal_hash, seal_mac
from application.context import CommandContext, Principal
from application.ports import AuditedEvent, AuditLog, ChainHead
from application.results import CommandResult
from application.stored import StampedStoredEvent
from application.verification import (
    SEALED_TOPIC,
    BreakKind,
    ChainBreak,
    ChainWalk,
    VerifyReport,
)
from domain.base import TeaimAggregate
from domain.errors import InvalidValueError, NotFoundError, RuleViolationError
from domain.project import Project
from domain.roles import Permission, Role
from domain.seal import LOG_ORG, LOG_SEAL_ID, ProjectSeal, org_seal_id_for, seal_id_for
from domain.signoff import SignOff
from domain.stage import Stage
from domain.stamps import Stamp

# The audit log port and its records live with the other ports (application.ports); they are
# exported here too because adapters and routes know them as the auditors' vocabulary.
__all__ = [
    "SEALED_TOPIC",
    "SEALER",
    "SEAL_MAX_HEADS",
    "AuditLog",
    "AuditedEvent",
    "AuditingCommands",
    "BreakKind",
    "ChainBreak",
    "ChainHead",
    "ChainWalk",
    "ProjectAsOf",
    "SealFailure",
    "SealRun",
    "VerifyReport",
]

# The most heads one seal event pins (about 150 bytes each): larger news is sealed in several.
SEAL_MAX_HEADS = 2000
# Whoever seals on a timer: the reserved `service:` prefix keeps it apart from every user.
SEALER = "service:sealer"
# The aggregates an as-of view rebuilds, by the topic prefix of their events.
_AS_OF_TOPICS = tuple(f"{cls.__module__}:{cls.__qualname__}." for cls in (Project, Stage, SignOff))


# Results -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SealFailure:
    """One scope the sealer could not seal, and why (the exception's class and message).

    `project_id` is None for an org's own seal, and `org_id` is `LOG_ORG` for the log's.
    """

    org_id: UUID
    project_id: UUID | None
    error: str


@dataclass(frozen=True, slots=True)
class SealRun:
    """What one pass of the periodic sealer did."""

    through_position: int
    sealed: list[UUID]
    unchanged: list[UUID]
    failed: list[UUID]
    failures: list[SealFailure] = field(default_factory=list)
    # Orgs whose aggregates of no project got a new seal.
    orgs_sealed: list[UUID] = field(default_factory=list)
    # The newest log seal hash after the pass: the anchor to keep outside the database.
    log_seal_hash: str | None = None


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

    def project_history(
        self, *, org_id: UUID, project_id: UUID
    ) -> AbstractContextManager[Iterator[AuditedEvent]]:
        """The project's raw events in position order (`authorize_project_history` first)."""
        return self._log().project_events(org_id, project_id)

    def project_org(self, project_id: UUID) -> UUID | None:
        """The org a project belongs to, read from its events (for operator tools)."""
        return self._log().project_org(project_id)

    # Seals ---------------------------------------------------------------------------------

    def seal_project(
        self, *, ctx: CommandContext, project_id: UUID, max_heads: int = SEAL_MAX_HEADS
    ) -> CommandResult:
        """Seal the heads of the project's chains that moved since its last seal, at most
        `max_heads` per seal event (position of the last seal; 0: nothing new to seal)."""
        self._guard_project(ctx, project_id, Permission.AUDIT, action="audit.seal")
        stamp = self._stamp(ctx, project_id)
        found = self._find(ProjectSeal, seal_id_for(project_id))
        seal = found or ProjectSeal.start(project_id=project_id, stamp=stamp)
        return self._seal_scope(seal, stamp, max_heads)

    def seal_all_projects(self, *, since_position: int = 0, correlation_id: str) -> SealRun:
        """Seal every scope with events after `since_position`, then the log over those seals.

        Scopes: each changed project and each org with changed aggregates of no project, each
        sealed as its own org's service. Idempotent: a scope whose last seal covers it is left
        alone, and a seal racing another sealer loses harmlessly (it conflicts on the seal
        aggregate's version). Each scope is sealed on its own: whatever one raises is recorded
        in the run's `failures` and the pass goes on with the others.
        """
        log = self._log()
        through = log.last_position()
        sealed: list[UUID] = []
        unchanged: list[UUID] = []
        failed: list[UUID] = []
        failures: list[SealFailure] = []
        for org_id, project_id in log.projects_changed_after(since_position):
            try:
                result = self.seal_project(
                    ctx=self._sealer(org_id, correlation_id), project_id=project_id
                )
            except Exception as error:  # one project never stops the others
                # A lost race (IntegrityError), a vanished project, or a history that no longer
                # loads: the caller records it (run status, telemetry) and the next pass retries.
                failed.append(project_id)
                failures.append(SealFailure(org_id, project_id, _error_text(error)))
                continue
            (sealed if result.position else unchanged).append(project_id)
        orgs_sealed: list[UUID] = []
        for org_id in log.orgs_changed_after(since_position):
            try:
                result = self.seal_org(ctx=self._sealer(org_id, correlation_id))
            except Exception as error:  # one org never stops the others
                failures.append(SealFailure(org_id, None, _error_text(error)))
                continue
            if result.position:
                orgs_sealed.append(org_id)
        log_seal_hash: str | None = None
        try:
            self.seal_log(correlation_id=correlation_id)
            log_seal_hash = self.newest_seal_hash()
        except Exception as error:  # the scopes' seals stand; the next pass pins them again
            failures.append(SealFailure(LOG_ORG, None, _error_text(error)))
        return SealRun(
            through_position=through,
            sealed=sealed,
            unchanged=unchanged,
            failed=failed,
            failures=failures,
            orgs_sealed=orgs_sealed,
            log_seal_hash=log_seal_hash,
        )

    def seal_org(self, *, ctx: CommandContext) -> CommandResult:
        """Seal the heads of the caller's org's aggregates of no project that changed since its
        last seal (the service only)."""
        if not ctx.principal.is_service:
            raise RuleViolationError("only the service seals an org")
        org_id = ctx.principal.org_id
        seal_id = org_seal_id_for(org_id)
        stamp = self._stamp(ctx)
        seal = self._find(ProjectSeal, seal_id) or ProjectSeal.start_scope(
            seal_id=seal_id, stamp=stamp
        )
        return self._seal_scope(seal, stamp)

    def seal_log(self, *, correlation_id: str) -> CommandResult:
        """Pin, in the log's seal, every scope seal written since the last one (position 0:
        none), whoever wrote it (the timer, `teaim audit seal --project`, another process)."""
        ctx = self._sealer(LOG_ORG, correlation_id)
        stamp = self._stamp(ctx)
        seal = self._find(ProjectSeal, LOG_SEAL_ID) or ProjectSeal.start_scope(
            seal_id=LOG_SEAL_ID, stamp=stamp
        )
        return self._seal(seal, stamp, self._log().seal_heads_after(_since(seal), SEALED_TOPIC))

    def newest_seal_hash(self, project_id: UUID | None = None) -> str | None:
        """The newest seal hash of a project, or of the log (the hash to keep as an anchor)."""
        seal_id = LOG_SEAL_ID if project_id is None else seal_id_for(project_id)
        seal = self._find(ProjectSeal, seal_id, for_update=False)
        return None if seal is None else seal.last_seal_hash

    def _seal_scope(
        self, seal: ProjectSeal, stamp: Stamp, max_heads: int = SEAL_MAX_HEADS
    ) -> CommandResult:
        """Seal what changed in the seal's scope (its stamps: a project, or an org's aggregates
        of no project) since its last seal, in seals of at most `max_heads` heads.

        Only what changed: a project's or an org's aggregates grow without bound (20,000 items,
        every denial and audit read), so pinning all of them on every pass would make each seal
        event, and every load of the seal aggregate, as large as the scope. Each seal hash
        covers its predecessor, so the chain of seals commits to every head pinned before;
        verify checks that a scope's seals together pin every aggregate of it.

        News larger than `max_heads` (a scope's first seal, an outage of the sealer, a burst)
        is sealed in several seals, each through the position of the scope's `max_heads`-th
        event after the previous one: each pins the heads as they stood at its cut (at most
        `max_heads` aggregates, and the seal's own previous event). Events after the newest
        position when the call began are left to the next pass, so a tenant writing without
        pause cannot keep the sealer on its scope.
        """
        if max_heads < 1:
            raise InvalidValueError("a seal pins at least one head")
        log = self._log()
        limit = log.last_position()
        result = CommandResult(id=seal.id, position=0)
        while True:
            since = _since(seal)
            # The seal's own events aside: a chunk of only those would seal nothing.
            cut = log.scope_cut(stamp.org_id, stamp.project_id, since, max_heads, seal.id)
            through = limit if cut is None else min(cut, limit)
            heads = log.scope_heads(stamp.org_id, stamp.project_id, since, through)
            sealed = self._seal(seal, stamp, heads)
            if not sealed.position:
                return result
            result = sealed
            if through >= limit:
                return result

    def _seal(self, seal: ProjectSeal, stamp: Stamp, found: list[ChainHead]) -> CommandResult:
        heads: dict[str, dict[str, Any]] = {
            str(head.originator_id): {
                "version": head.version,
                "position": head.position,
                "chain_hash": head.chain_hash.hex(),
            }
            for head in found
        }
        if not heads or seal.is_current(heads):
            return CommandResult(id=seal.id, position=0)
        through = max(int(head["position"]) for head in heads.values())
        digest = seal_hash(
            org_id=stamp.org_id,
            project_id=stamp.project_id,
            through_position=through,
            heads=heads,
            previous_seal_hash=seal.last_seal_hash,
        )
        key = self.config.seal_key
        seal.seal(
            heads=heads,
            through_position=through,
            seal_hash=digest,
            seal_mac=None if key is None else seal_mac(key, digest),
            stamp=stamp,
        )
        return CommandResult(id=seal.id, position=self._commit(seal))

    @staticmethod
    def _sealer(org_id: UUID, correlation_id: str) -> CommandContext:
        return CommandContext(
            principal=Principal(
                user_id=SEALER, org_id=org_id, org_role=Role.OWNER, is_service=True
            ),
            correlation_id=correlation_id,
        )

    # Verification --------------------------------------------------------------------------

    def verify_project(
        self,
        *,
        org_id: UUID,
        project_id: UUID,
        anchor: str | None = None,
        progress: Callable[[int], None] | None = None,
        progress_every: int = 1000,
    ) -> VerifyReport:
        """Walk the project's events in position order; the first broken one, or intact.

        Each event's content hash is recomputed from the stored row, its stamps compared with
        its aggregate's, each chain link checked from its predecessor, and each seal's hash,
        MAC (with a seal key) and recorded heads compared with the stored chains. Events of the
        project's aggregates stamped elsewhere are walked too. Authorize the caller first
        (`audit_project`); operators call this directly.
        """
        walk = ChainWalk(self._log(), (org_id, project_id), anchor=anchor, **self._keying())
        return self._walk(
            walk, self._log().project_events(org_id, project_id), progress, progress_every
        )

    def verify_store(
        self,
        *,
        anchor: str | None = None,
        progress: Callable[[int], None] | None = None,
        progress_every: int = 1000,
    ) -> VerifyReport:
        """Walk every event of the store (operators): `verify_project`'s checks for every scope
        (projects, orgs, the log), and that no position of the log is missing."""
        walk = ChainWalk(self._log(), None, anchor=anchor, **self._keying())
        return self._walk(walk, self._log().all_events(), progress, progress_every)

    def _keying(self) -> dict[str, Any]:
        return {"key": self.config.seal_key, "keyed_from": self.config.seal_key_from_position}

    @staticmethod
    def _walk(
        walk: ChainWalk,
        history: AbstractContextManager[Iterator[AuditedEvent]],
        progress: Callable[[int], None] | None,
        progress_every: int,
    ) -> VerifyReport:
        with history as events:
            for event in events:
                broken = walk.check(event)
                if broken is not None:
                    return walk.report(broken)
                if progress is not None and walk.events % progress_every == 0:
                    progress(walk.events)
        if progress is not None:
            progress(walk.events)
        return walk.report(walk.finish())

    # Point in time -------------------------------------------------------------------------

    def project_as_of(
        self, *, org_id: UUID, project_id: UUID, at: datetime | None = None
    ) -> ProjectAsOf:
        """The project, its stages and sign-offs folded from their events stamped <= `at` (now).

        Authorize first (`authorize_project_history` with the `read` permission).
        """
        at = self.clock.now() if at is None else at
        if at.tzinfo is None or at.utcoffset() is None:
            raise InvalidValueError("the instant must carry a timezone")
        folded: dict[UUID, Any] = {}
        later: set[UUID] = set()
        with self._log().project_events(org_id, project_id) as events:
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


def _since(seal: ProjectSeal) -> int:
    """The position after which a scope's next seal looks for moved chains."""
    return seal.covered_position if seal.seal_count else 0


def _error_text(error: BaseException) -> str:
    """An exception as a run record shows it: class and message, bounded in length."""
    return f"{type(error).__name__}: {error}"[:300]
