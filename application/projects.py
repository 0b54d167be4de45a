"""Project commands: lifecycle and membership."""

from __future__ import annotations

from uuid import UUID, uuid4

from application.base import TeaimBase
from application.context import CommandContext
from application.results import CommandResult
from domain.errors import RuleViolationError
from domain.project import Project, ProjectCodeClaim, project_code_claim_id, validate_code
from domain.roles import OrgPermission, Permission, Role


class ProjectCommands(TeaimBase):
    """Projects and who is in them."""

    def create_project(self, *, ctx: CommandContext, code: str, name: str) -> CommandResult:
        """Start a project in the caller's org; the caller becomes its owner."""
        self._guard_org(ctx, OrgPermission.CREATE_PROJECT, action="project.create")
        self._require_org(ctx.principal.org_id)
        validate_code(code)
        if project_code_claim_id(ctx.principal.org_id, code) in self.repository:
            raise RuleViolationError("project code already in use in this org", code=code)
        project_id = uuid4()
        stamp = self._stamp(ctx, project_id)
        project = Project.create(project_id=project_id, code=code, name=name, stamp=stamp)
        # Saved together: a racing creation with the same code conflicts on the claim's id.
        claim = ProjectCodeClaim.claim(project_id=project_id, code=code, stamp=stamp)
        return CommandResult(id=project.id, position=self._commit(project, claim))

    def get_project(self, *, ctx: CommandContext, project_id: UUID) -> Project:
        """A project the caller is a member of."""
        project, _ = self._guard_project(ctx, project_id, Permission.READ, action="project.read")
        return project

    def rename_project(self, *, ctx: CommandContext, project_id: UUID, name: str) -> CommandResult:
        """Rename a project."""
        project, _ = self._guard_project(
            ctx, project_id, Permission.LIFECYCLE, action="project.rename", for_update=True
        )
        project.rename(name=name, stamp=self._stamp(ctx, project_id))
        return CommandResult(id=project.id, position=self._commit(project))

    def archive_project(self, *, ctx: CommandContext, project_id: UUID) -> CommandResult:
        """Archive a project: it refuses writes until unarchived."""
        project, _ = self._guard_project(
            ctx, project_id, Permission.LIFECYCLE, action="project.archive", for_update=True
        )
        project.archive(stamp=self._stamp(ctx, project_id))
        return CommandResult(id=project.id, position=self._commit(project))

    def unarchive_project(self, *, ctx: CommandContext, project_id: UUID) -> CommandResult:
        """Bring an archived project back."""
        project, _ = self._guard_project(
            ctx, project_id, Permission.LIFECYCLE, action="project.unarchive", for_update=True
        )
        project.unarchive(stamp=self._stamp(ctx, project_id))
        return CommandResult(id=project.id, position=self._commit(project))

    def add_member(
        self, *, ctx: CommandContext, project_id: UUID, user_id: str, role: Role, signer: bool
    ) -> CommandResult:
        """Add a member to a project."""
        project, acting = self._guard_project(
            ctx, project_id, Permission.MANAGE_MEMBERS, action="project.member.add", for_update=True
        )
        with self._recording_denials(ctx, project_id, action="project.member.add"):
            project.add_member(
                user_id=user_id,
                role=role,
                signer=signer,
                acting_role=acting,
                stamp=self._stamp(ctx, project_id),
            )
        return CommandResult(id=project.id, position=self._commit(project))

    def update_member(
        self,
        *,
        ctx: CommandContext,
        project_id: UUID,
        user_id: str,
        role: Role | None = None,
        signer: bool | None = None,
    ) -> CommandResult:
        """Change a member's role and/or signer toggle in one command."""
        project, acting = self._guard_project(
            ctx,
            project_id,
            Permission.MANAGE_MEMBERS,
            action="project.member.update",
            for_update=True,
        )
        stamp = self._stamp(ctx, project_id)
        with self._recording_denials(ctx, project_id, action="project.member.update"):
            if role is not None:
                project.change_member_role(
                    user_id=user_id, role=role, acting_role=acting, stamp=stamp
                )
            if signer is not None:
                project.set_signer(user_id=user_id, signer=signer, acting_role=acting, stamp=stamp)
        return CommandResult(id=project.id, position=self._commit(project))

    def remove_member(
        self, *, ctx: CommandContext, project_id: UUID, user_id: str
    ) -> CommandResult:
        """Remove a member from a project."""
        project, acting = self._guard_project(
            ctx,
            project_id,
            Permission.MANAGE_MEMBERS,
            action="project.member.remove",
            for_update=True,
        )
        with self._recording_denials(ctx, project_id, action="project.member.remove"):
            project.remove_member(
                user_id=user_id, acting_role=acting, stamp=self._stamp(ctx, project_id)
            )
        return CommandResult(id=project.id, position=self._commit(project))
