"""The eventsourcing Application every command module extends: stamping, guards, saving."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar, TypeVar
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import MutableOrImmutableAggregate
from eventsourcing.persistence import JSONTranscoder, Mapper

from application.config import AppConfig
from application.context import CommandContext
from application.mapper import StampingMapper
from application.ports import Clock, SecretSource
from application.transcodings import register_domain_transcodings
from domain.artifact import Artifact
from domain.base import TeaimAggregate
from domain.denial import SecurityDenial
from domain.errors import NotFoundError, PermissionDeniedError
from domain.org import Org
from domain.project import Project
from domain.raid import Memory, RaidItem
from domain.roles import OrgPermission, Permission, Role, org_allows
from domain.signoff import SignOff
from domain.stage import Stage
from domain.stamps import Stamp

A = TypeVar("A", bound=TeaimAggregate)


class TeaimBase(Application[UUID]):
    """Shared machinery of the TEAIM application: one event store, one notification log."""

    name = "Teaim"
    snapshotting_intervals: ClassVar[dict[type[MutableOrImmutableAggregate[UUID]], int]] = {
        cls: AppConfig().snapshot_interval
        for cls in (Project, Stage, SignOff, Artifact, RaidItem, Memory, Org)
    }

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        clock: Clock,
        secrets: SecretSource,
        config: AppConfig | None = None,
    ) -> None:
        self.clock = clock
        self.secrets = secrets
        self.config = config or AppConfig()
        super().__init__(env)

    # Infrastructure hooks --------------------------------------------------------------

    def construct_mapper(self) -> Mapper[UUID]:
        """A mapper that puts tenant stamps into their own columns."""
        base = super().construct_mapper()
        return StampingMapper(
            transcoder=base.transcoder, compressor=base.compressor, cipher=base.cipher
        )

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
        """Record a refused attempt; the caller raises the answer afterwards."""
        denial = SecurityDenial.record(
            denial_id=uuid4(),
            action=action,
            target_kind=target_kind,
            target_id=str(target_id),
            reason=reason,
            stamp=self._stamp(ctx),
        )
        self._commit(denial)

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
