"""`teaim audit`: replay a project's raw history, verify hash chains and seals, seal them.

`teaim audit seal` prints the newest seal hash: kept somewhere the database's users cannot
write (a ticket, a notary, another system), it is the anchor `teaim audit verify --anchor`
proves the history against.
"""

from __future__ import annotations

import re
import sys
import uuid
from typing import Any
from uuid import UUID

import click
import orjson

from adapters.postgres.migrate import UnmigratedDatabaseError
from application.auditing import VerifyReport
from application.context import CommandContext, Principal
from domain.errors import DomainError
from domain.roles import Role
from interfaces.http.auth import SERVICE_USER
from interfaces.http.routes.auditors import replay_lines, verify_out
from interfaces.runtime import Runtime, build_runtime
from interfaces.settings import Settings

_HASH = re.compile(r"[0-9a-f]{64}")


@click.group("audit")
def audit_group() -> None:
    """Auditors: replay a project's raw history, verify hash chains and seals, seal them."""


_ORG = click.option(
    "--org",
    "org_id",
    type=click.UUID,
    default=None,
    help="The project's org (checked when given, else read from the project's events).",
)


def _anchor(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip().lower()
    if not _HASH.fullmatch(value):
        raise click.BadParameter("a seal hash is 64 hexadecimal digits")
    return value


def _audit_runtime() -> Runtime:
    try:
        return build_runtime(Settings())
    except UnmigratedDatabaseError as error:
        raise click.ClickException(str(error)) from None


def _org_of(runtime: Runtime, project_id: UUID, org_id: UUID | None) -> UUID:
    found = runtime.app.project_org(project_id)
    if found is None or (org_id is not None and org_id != found):
        raise click.ClickException(f"project {project_id} not found")
    return found


def _service_ctx(org_id: UUID) -> CommandContext:
    return CommandContext(
        principal=Principal(
            user_id=SERVICE_USER, org_id=org_id, org_role=Role.OWNER, is_service=True
        ),
        correlation_id=f"cli-{uuid.uuid4()}",
    )


@audit_group.command("replay")
@click.option("--project", "project_id", type=click.UUID, required=True, help="The project.")
@_ORG
def audit_replay(project_id: UUID, org_id: UUID | None) -> None:
    """Write the project's raw event history to stdout as NDJSON, in log order."""
    runtime = _audit_runtime()
    try:
        org = _org_of(runtime, project_id, org_id)
        out = sys.stdout.buffer
        history = runtime.app.project_history(org_id=org, project_id=project_id)
        count = 0
        for count, line in enumerate(replay_lines(history), start=1):
            out.write(line)
            if count % 10_000 == 0:
                click.echo(f"replayed {count} events", err=True)
        out.flush()
        click.echo(f"replayed {count} events", err=True)
    finally:
        runtime.close()


@audit_group.command("verify")
@click.option(
    "--project",
    "project_id",
    type=click.UUID,
    default=None,
    help="Only this project (default: the whole store, every org, gap-free positions).",
)
@_ORG
@click.option(
    "--anchor",
    default=None,
    callback=_anchor,
    help="A seal hash kept outside the database (`teaim audit seal`): some seal must have it.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def audit_verify(
    project_id: UUID | None, org_id: UUID | None, anchor: str | None, as_json: bool
) -> None:
    """Check hash chains, stamps and seals; exit 0 when intact, 1 at the first break."""
    if org_id is not None and project_id is None:
        raise click.UsageError("--org names a project's org: give --project too")
    runtime = _audit_runtime()

    def progress(n: int) -> None:
        click.echo(f"verified {n} events", err=True)

    try:
        if project_id is None:
            report = runtime.app.verify_store(
                anchor=anchor, progress=progress, progress_every=10_000
            )
        else:
            report = runtime.app.verify_project(
                org_id=_org_of(runtime, project_id, org_id),
                project_id=project_id,
                anchor=anchor,
                progress=progress,
                progress_every=10_000,
            )
    finally:
        runtime.close()
    if as_json:
        click.echo(orjson.dumps(_report_json(report)).decode())
    elif report.broken is None:
        anchored = "" if anchor is None else ", anchor found"
        click.echo(
            f"intact: {report.events} events, {report.aggregates} aggregates,"
            f" {report.seals} seals, through position {report.last_position}{anchored}"
        )
    else:
        broken = report.broken
        where = "missing" if broken.position is None else f"position {broken.position}"
        click.echo(
            f"BROKEN ({broken.kind.value}) at {where}: aggregate {broken.aggregate_id}"
            f" version {broken.version}: {broken.detail}"
        )
    sys.exit(0 if report.intact else 1)


def _report_json(report: VerifyReport) -> dict[str, Any]:
    body = verify_out(report).model_dump(mode="json")
    body["org_id"] = None if report.org_id is None else str(report.org_id)
    return body


@audit_group.command("seal")
@click.option("--project", "project_id", type=click.UUID, default=None, help="Only this one.")
def audit_seal(project_id: UUID | None) -> None:
    """Seal one project, or every changed project and org and then the log; print the newest
    seal hash (keep it outside the database: it is the anchor verify proves history against).
    """
    runtime = _audit_runtime()
    try:
        if project_id is not None:
            ctx = _service_ctx(_org_of(runtime, project_id, None))
            try:
                result = runtime.app.seal_project(ctx=ctx, project_id=project_id)
            except DomainError as error:
                raise click.ClickException(error.message) from None
            if result.position:
                click.echo(f"sealed {project_id} at position {result.position}")
            else:
                click.echo(f"{project_id}: already sealed, nothing new")
            click.echo(f"seal hash: {runtime.app.newest_seal_hash(project_id)}")
            return
        run = runtime.app.seal_all_projects(correlation_id=f"cli-{uuid.uuid4()}")
        click.echo(
            f"sealed {len(run.sealed)}, unchanged {len(run.unchanged)},"
            f" failed {len(run.failed)} (through position {run.through_position});"
            f" orgs sealed {len(run.orgs_sealed)}"
        )
        for failure in run.failures:
            scope = "no project" if failure.project_id is None else f"project {failure.project_id}"
            click.echo(f"failed: org {failure.org_id} {scope}: {failure.error}", err=True)
        click.echo(f"seal hash: {run.log_seal_hash or 'none (nothing sealed yet)'}")
        if run.failures:
            sys.exit(1)
    finally:
        runtime.close()
