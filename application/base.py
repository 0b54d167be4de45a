"""The eventsourcing Application every command module extends: ports, stamping, guards, saving."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError, Application, Repository
from eventsourcing.persistence import JSONTranscoder, Mapper, Transcoder

from application.aggregate_cache import CopyOnWriteRepository
from application.config import AppConfig
from application.context import CommandContext
from application.mapper import StampingMapper
from application.ports import AuditLog, Clock, SecretSource
from application.snapshots import snapshotting_intervals
from application.transcodings import TeaimTranscoder, register_domain_transcodings
from domain.base import TeaimAggregate
from domain.denial import DenialBurst, DenialCoalescer, Principal, SecurityDenial
from domain.errors import NotFoundError, PermissionDeniedError
from domain.org import Org
from domain.project import Project
from domain.roles import OrgPermission, Permission, Role, org_allows
from domain.stamps import Stamp

A = TypeVar("A", bound=TeaimAggregate)


class TeaimBase(Application[UUID]):
    """What every command module shares: the ports, one event store, stamping, guards, saving.

    Command modules are siblings: each extends this class and nothing else, so a helper two
    of them need lives here (or in a pure module), never in one of them.
    """

    name = "Teaim"
    # The library creates the snapshot store only when the class asks for snapshots; which
    # aggregates, and how often, is decided per instance from the config (see __init__).
    is_snapshotting_enabled = True

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        clock: Clock,
        secrets: SecretSource,
        audit_log: AuditLog | None,
        config: AppConfig | None = None,
    ) -> None:
        """Wire every port; `audit_log` is None only where no auditor reads (in-memory tests)."""
        self.clock = clock
        self.secrets = secrets
        self.audit_log = audit_log
        self.config = config or AppConfig()
        # The library declares `snapshotting_intervals` on the class but reads it through the
        # instance when saving; an instance value set before Application.__init__ lets the
        # config decide it, where a class value would be fixed when the module is imported.
        vars(self)["snapshotting_intervals"] = snapshotting_intervals(self.config)
        # Bursts of refusals per principal, coalesced (domain.denial); per process, so each
        # process records at most `denial_burst` refusals of a principal per window.
        self._denials = DenialCoalescer(
            window=self.config.denial_window,
            burst=self.config.denial_burst,
            principals=self.config.denial_principals,
        )
        self._denials_lock = threading.Lock()
        super().__init__(env)

    # Infrastructure hooks --------------------------------------------------------------

    def construct_mapper(self) -> Mapper[UUID]:
        """A mapper that puts tenant stamps into their own columns."""
        base = super().construct_mapper()
        return StampingMapper(
            transcoder=base.transcoder, compressor=base.compressor, cipher=base.cipher
        )

    def construct_transcoder(self) -> Transcoder:
        """JSON as the library writes it, unambiguous for user-keyed maps (TeaimTranscoder)."""
        transcoder = TeaimTranscoder()
        self.register_transcodings(transcoder)
        return transcoder

    def construct_repository(self) -> Repository[UUID]:
        """The library's repository, except that a fast-forward never changes an aggregate a
        reader was handed (application.aggregate_cache)."""
        return CopyOnWriteRepository.like(super().construct_repository())

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        """The library's transcodings plus the domain's value objects."""
        super().register_transcodings(transcoder)
        register_domain_transcodings(transcoder)

    # Helpers for command modules -------------------------------------------------------

    def _stamp(self, ctx: CommandContext, project_id: UUID | None = None) -> Stamp:
        return Stamp(
            org_id=ctx.principal.org_id,
            actor=ctx.principal.user_id,
            correlation_id=ctx.correlation_id,
            at=self.clock.now(),
            project_id=project_id,
        )

    def _commit(self, *aggregates: TeaimAggregate) -> int:
        """Save atomically; the position of the last event written (0 if nothing changed)."""
        recordings = self.save(*aggregates)
        if not recordings:
            return 0
        return max(r.notification.id for r in recordings)

    def _find(self, cls: type[A], aggregate_id: UUID, *, for_update: bool = True) -> A | None:
        # Reads that will not mutate may share the cached instance instead of a copy.
        try:
            aggregate: object = self.repository.get(aggregate_id, deepcopy_from_cache=for_update)
        except AggregateNotFoundError:
            return None
        return aggregate if isinstance(aggregate, cls) else None

    def _deny(
        self, ctx: CommandContext, *, action: str, target_kind: str, target_id: Any, reason: str
    ) -> None:
        """Record a refused attempt (or count it, in a burst); the caller raises the answer.

        The first `denial_burst` refusals of a principal in a window are events of their own;
        later ones are counted into one `coalesced` denial written when the window has closed
        (with the next refusal of anyone, or `flush_denials`).
        """
        principal = ctx.principal
        now = self.clock.now()
        with self._denials_lock:
            record, finished = self._denials.admit(
                (principal.org_id, principal.user_id),
                at=now,
                action=action,
                target_kind=target_kind,
                target_id=str(target_id)[:200],
            )
        denials = [self._count_record(who, burst, now) for who, burst in finished]
        if record:
            denials.append(
                SecurityDenial.record(
                    denial_id=uuid4(),
                    action=action,
                    target_kind=target_kind,
                    target_id=str(target_id),
                    reason=reason,
                    stamp=self._stamp(ctx),
                )
            )
        if denials:
            self._commit(*denials)

    def flush_denials(self) -> int:
        """Record every count of refusals still held (at shutdown); how many were written."""
        now = self.clock.now()
        with self._denials_lock:
            finished = self._denials.drain()
        if finished:
            self._commit(*(self._count_record(who, burst, now) for who, burst in finished))
        return len(finished)

    def _count_record(self, who: Principal, burst: DenialBurst, now: datetime) -> SecurityDenial:
        # Stamped as the principal whose refusals it counts, in that principal's org.
        org_id, user_id = who
        stamp = Stamp(org_id=org_id, actor=user_id, correlation_id=f"denials-{uuid4()}", at=now)
        return SecurityDenial.record_count(denial_id=uuid4(), burst=burst, stamp=stamp)

    def _guard_project(
        self,
        ctx: CommandContext,
        project_id: UUID,
        permission: Permission,
        *,
        action: str,
        for_update: bool = False,
    ) -> tuple[Project, Role]:
        """The project and the caller's role in it, if the caller may do `permission` there.

        A caller outside the project gets exactly what a missing project gets (404), so
        project ids leak nothing across tenants; every refusal is recorded.
        """
        project = self._find(Project, project_id, for_update=for_update)
        principal = ctx.principal
        if project is None or project.org_id != principal.org_id:
            self._deny(
                ctx,
                action=action,
                target_kind="project",
                target_id=project_id,
                reason="not_found",
            )
            raise NotFoundError("project not found", project_id=project_id)
        if principal.is_service:
            # The internal service acts for its named tenant with owner authority.
            return project, Role.OWNER
        membership = project.membership(principal.user_id)
        if membership is None:
            self._deny(
                ctx,
                action=action,
                target_kind="project",
                target_id=project_id,
                reason="not_a_member",
            )
            raise NotFoundError("project not found", project_id=project_id)
        if not membership.allows(permission):
            self._deny(
                ctx,
                action=action,
                target_kind="project",
                target_id=project_id,
                reason=f"missing_permission:{permission.value}",
            )
            raise PermissionDeniedError(
                f"your role ({membership.role.value}) does not allow {permission.value}",
                project_id=project_id,
            )
        return project, membership.role

    @contextmanager
    def _recording_denials(
        self, ctx: CommandContext, project_id: UUID, *, action: str
    ) -> Iterator[None]:
        """Record a refusal the domain itself raises (rank checks), like the guard's own.

        A rank refusal comes from the aggregate, after the guard passed; it is recorded as a
        `security.denied` event like every other refusal.
        """
        try:
            yield
        except PermissionDeniedError:
            self._deny(
                ctx,
                action=action,
                target_kind="project",
                target_id=project_id,
                reason="role_rank",
            )
            raise

    def _guard_org(self, ctx: CommandContext, permission: OrgPermission, *, action: str) -> None:
        principal = ctx.principal
        if principal.is_service or org_allows(principal.org_role, permission):
            return
        self._deny(
            ctx,
            action=action,
            target_kind="org",
            target_id=principal.org_id,
            reason=f"missing_permission:{permission.value}",
        )
        raise PermissionDeniedError(
            f"your org role ({principal.org_role.value}) does not allow {permission.value}",
            org_id=principal.org_id,
        )

    def _child(self, cls: type[A], aggregate_id: UUID, project: Project, kind: str) -> A:
        """An aggregate that must belong to the (already guarded) project."""
        child = self._find(cls, aggregate_id)
        if child is None or getattr(child, "project_id", None) != project.id:
            raise NotFoundError(f"{kind} not found", **{f"{kind}_id": aggregate_id})
        return child

    def _require_org(self, org_id: UUID) -> Org:
        """The caller's registered org (org and project commands both need it first)."""
        org = self._find(Org, org_id)
        if org is None:
            raise NotFoundError(
                "org is not registered (an operator runs `teaim orgs create`)", org_id=org_id
            )
        return org
