"""The composition root hands the application its settings and ports (on real PostgreSQL)."""

from __future__ import annotations

from uuid import UUID, uuid4

from application.context import CommandContext, Principal
from domain.project import Project
from domain.roles import Role
from interfaces.runtime import build_runtime
from tests.api.conftest import EPOCH, make_settings, service_ctx
from tests.support.clocks import SettableClock


def owner(org: UUID) -> CommandContext:
    return CommandContext(principal=Principal("olga", org, Role.OWNER), correlation_id="cid")


def test_the_snapshot_interval_setting_reaches_the_application(database_url: str) -> None:
    settings = make_settings(database_url, snapshot_interval=2)
    runtime = build_runtime(settings, clock=SettableClock(EPOCH))
    try:
        org = uuid4()
        runtime.app.create_org(ctx=service_ctx(org), name="Acme")
        project_id = runtime.app.create_project(ctx=owner(org), code="ACME-1", name="P").id
        for n in range(4):  # versions 2..5
            runtime.app.rename_project(ctx=owner(org), project_id=project_id, name=f"P{n}")
        assert runtime.app.snapshots is not None
        stored = [s.originator_version for s in runtime.app.snapshots.get(project_id)]
        assert stored == [2, 4]
    finally:
        runtime.close()
    # A fresh process (no aggregate cache) loads from the stored snapshot onwards.
    again = build_runtime(settings, clock=SettableClock(EPOCH))
    try:
        project: object = again.app.repository.get(project_id)
        assert isinstance(project, Project)
        assert (project.version, project.name) == (5, "P3")
    finally:
        again.close()


def test_the_audit_log_is_wired_through_the_constructor(database_url: str) -> None:
    runtime = build_runtime(make_settings(database_url), clock=SettableClock(EPOCH))
    try:
        assert runtime.audit_log is not None
        assert runtime.app.audit_log is runtime.audit_log
        org = uuid4()
        runtime.app.create_org(ctx=service_ctx(org), name="Acme")
        project_id = runtime.app.create_project(ctx=owner(org), code="ACME-1", name="P").id
        assert runtime.app.seal_project(ctx=owner(org), project_id=project_id).position > 0
        report = runtime.app.verify_project(org_id=org, project_id=project_id)
        assert report.intact
        assert report.seals == 1
    finally:
        runtime.close()
