"""`teaim artifacts reingest`: ask for ingestion again, for one document or many.

It records `Artifact.ReingestRequested` as the internal service for the document's org and
nothing else: the ingestion reactor queues the jobs and the workers run them, fairly between
orgs, wherever they run. Documents to visit come from the review-queue read model (a project's live
documents, or only its lanes when only `needs_ocr`/`failed` are asked for), each is
then checked on the artifact itself (its state, whether it still exists), so a stale read
model can make the command skip a document, never reingest a wrong one.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from uuid import UUID

import click

from adapters.postgres.migrate import UnmigratedDatabaseError
from application.context import CommandContext, Principal
from domain.artifact import IngestionState
from domain.errors import DomainError
from domain.roles import Role
from interfaces.http.auth import SERVICE_USER
from interfaces.read_side import build_views
from interfaces.runtime import Runtime, build_runtime
from interfaces.settings import Settings
from projections.paging import MAX_LIMIT, PageRequest
from projections.review_queue_view import LANES
from projections.views import Views

STATES = [state.value for state in IngestionState if state is not IngestionState.NO_CONTENT]
# Progress is printed every this many documents (and at the end).
PROGRESS_EVERY = 50


@click.group("artifacts")
def artifacts_group() -> None:
    """Documents: ingestion on demand."""


@artifacts_group.command("reingest")
@click.argument("artifact_id", type=click.UUID, required=False)
@click.option("--project", "project_id", type=click.UUID, default=None, help="The project.")
@click.option(
    "--org",
    "org_id",
    type=click.UUID,
    default=None,
    help="Every project of this org (or the project's org, checked, with --project).",
)
@click.option(
    "--state",
    "states",
    type=click.Choice(STATES),
    multiple=True,
    help="Only documents in this ingestion state (repeatable; default: any).",
)
def reingest(
    artifact_id: UUID | None,
    project_id: UUID | None,
    org_id: UUID | None,
    states: tuple[str, ...],
) -> None:
    """Reingest one document (ARTIFACT_ID --project P), a project's (--project P) or an
    org's (--org O) documents, optionally only those in --state; prints progress."""
    if project_id is None and org_id is None:
        raise click.UsageError("give --project (with or without ARTIFACT_ID) or --org")
    if artifact_id is not None and project_id is None:
        raise click.UsageError("ARTIFACT_ID needs its --project")
    try:
        runtime = build_runtime(Settings())
    except UnmigratedDatabaseError as error:
        raise click.ClickException(str(error)) from None
    try:
        org = _org(runtime, project_id, org_id)
        wanted = frozenset(states)
        if artifact_id is not None:
            assert project_id is not None
            targets = [(project_id, artifact_id)]
        else:
            views = build_views(runtime)
            projects = [project_id] if project_id else list(_projects(views, org))
            targets = [
                (project, found)
                for project in projects
                for found in _documents(views, org, project, wanted)
            ]
        _request(runtime, org, targets, wanted)
    finally:
        runtime.close()


def _org(runtime: Runtime, project_id: UUID | None, org_id: UUID | None) -> UUID:
    if project_id is None:
        assert org_id is not None
        return org_id
    found = runtime.app.project_org(project_id)
    if found is None or (org_id is not None and org_id != found):
        raise click.ClickException(f"project {project_id} not found")
    return found


def _request(
    runtime: Runtime, org: UUID, targets: list[tuple[UUID, UUID]], states: frozenset[str]
) -> None:
    total = len(targets)
    requested = 0
    ctx = CommandContext(
        principal=Principal(user_id=SERVICE_USER, org_id=org, org_role=Role.OWNER, is_service=True),
        correlation_id=f"cli-reingest-{uuid.uuid4()}",
    )
    for done, (project, artifact) in enumerate(targets, start=1):
        try:
            result = runtime.app.request_reingest_as_service(
                ctx=ctx, project_id=project, artifact_id=artifact, states=states
            )
        except DomainError as error:
            click.echo(f"org {org} artifact {artifact}: {error.message}", err=True)
            result = None
        requested += result is not None
        if done % PROGRESS_EVERY == 0 or done == total:
            click.echo(f"reingest: {done}/{total} visited, {requested} requested", err=True)
    click.echo(f"requested {requested} of {total} documents (org {org})")


def _projects(views: Views, org: UUID) -> Iterator[UUID]:
    cursor: str | None = None
    while True:
        page = views.lists.projects(
            org,
            member=None,
            archived=False,
            sort="oldest",
            page=PageRequest(limit=MAX_LIMIT, cursor=cursor),
        )
        yield from (project.id for project in page.items)
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def _documents(views: Views, org: UUID, project: UUID, states: frozenset[str]) -> Iterator[UUID]:
    """The project's documents worth visiting: its review lanes when only those states are
    asked for (a short list), else every live document."""
    if states and states <= set(LANES):
        for lane in (lane for lane in LANES if lane in states):
            cursor: str | None = None
            while True:
                page = views.review_queue.items(
                    org,
                    project,
                    lane=lane,
                    page=PageRequest(limit=MAX_LIMIT, cursor=cursor),
                )
                yield from (item.artifact_id for item in page.items)
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
        return
    cursor = None
    while True:
        documents = views.review_queue.documents(
            org, project, page=PageRequest(limit=MAX_LIMIT, cursor=cursor)
        )
        yield from documents.items
        if documents.next_cursor is None:
            return
        cursor = documents.next_cursor
