"""Request and response models of the integrations monitor routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, Field, StringConstraints

from application.integrations import CheckOutcome, IntegrationFields
from domain.integration import (
    MAX_INTERVAL_MINUTES,
    MAX_TARGET_LENGTH,
    MIN_INTERVAL_MINUTES,
    CheckReason,
    Integration,
    IntegrationKind,
    IntegrationStatus,
)
from interfaces.http.models import In, Name, UserId
from projections.integrations_view import IntegrationRow
from projections.paging import Page

Target = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TARGET_LENGTH)]
Interval = Annotated[int, Field(ge=MIN_INTERVAL_MINUTES, le=MAX_INTERVAL_MINUTES)]


class IntegrationIn(In):
    """A new integration: what to reach, how often, and who answers for it."""

    name: Name
    kind: IntegrationKind = Field(
        description="`http`: HEAD (then GET) of an http(s) URL; `tcp`: a connect to host:port."
    )
    target: Target = Field(
        description="An http(s) URL without credentials (kind http), or host:port (kind tcp)."
    )
    interval_minutes: Interval = Field(default=15, description="Minutes between checks.")
    owner: UserId | None = Field(
        default=None, description="A project member (default: the caller)."
    )

    def fields(self) -> IntegrationFields:
        """As the command takes it."""
        return IntegrationFields(
            name=self.name,
            kind=self.kind,
            target=self.target,
            interval_minutes=self.interval_minutes,
            owner=self.owner,
        )


class IntegrationPatch(In):
    """Change what is given (a new kind or target resets the status to unknown)."""

    name: Name | None = None
    kind: IntegrationKind | None = None
    target: Target | None = None
    interval_minutes: Interval | None = None
    owner: UserId | None = None

    def fields(self) -> IntegrationFields:
        """As the command takes it."""
        return IntegrationFields(
            name=self.name,
            kind=self.kind,
            target=self.target,
            interval_minutes=self.interval_minutes,
            owner=self.owner,
        )


class IntegrationOut(BaseModel):
    """An integration and the outcome of its latest check."""

    id: UUID
    project_id: UUID
    name: str
    kind: IntegrationKind
    target: str
    interval_minutes: int
    owner: str
    status: IntegrationStatus
    reason: CheckReason | None = Field(description="Why the latest check failed (a code).")
    latency_ms: int | None
    last_checked_at: datetime | None
    due_at: datetime = Field(description="When the next scheduled check is due.")


class IntegrationListItemOut(IntegrationOut):
    """An integration in the project's list."""

    paused: bool = Field(description="The project is archived: no scheduled checks.")


class IntegrationPageOut(BaseModel):
    """A page of a project's integrations; `next_cursor` continues it (null at the end)."""

    items: list[IntegrationListItemOut]
    next_cursor: str | None


class CheckOut(BaseModel):
    """A check that ran now: its outcome and the integration after it."""

    ok: bool
    reason: CheckReason | None
    latency_ms: int | None
    recorded: bool = Field(description="False when the integration changed while it ran.")
    position: int
    integration: IntegrationOut


def integration_out(integration: Integration) -> IntegrationOut:
    """The response for one integration."""
    return IntegrationOut(
        id=integration.id,
        project_id=integration.project_id,
        name=integration.name,
        kind=integration.kind,
        target=integration.target,
        interval_minutes=integration.interval_minutes,
        owner=integration.owner,
        status=integration.status,
        reason=None if integration.reason is None else CheckReason(integration.reason),
        latency_ms=integration.latency_ms,
        last_checked_at=integration.last_checked_at,
        due_at=integration.due_at(),
    )


def integration_page_out(page: Page[IntegrationRow]) -> IntegrationPageOut:
    """The response for a page of the list."""
    return IntegrationPageOut(
        items=[
            IntegrationListItemOut(
                id=row.integration_id,
                project_id=row.project_id,
                name=row.name,
                kind=IntegrationKind(row.kind),
                target=row.target,
                interval_minutes=row.interval_minutes,
                owner=row.owner,
                status=IntegrationStatus(row.status),
                reason=None if row.reason is None else CheckReason(row.reason),
                latency_ms=row.latency_ms,
                last_checked_at=row.last_checked_at,
                due_at=row.due_at,
                paused=row.paused,
            )
            for row in page.items
        ],
        next_cursor=page.next_cursor,
    )


def check_out(outcome: CheckOutcome) -> CheckOut:
    """The response for a check made now."""
    probe = outcome.probe
    return CheckOut(
        ok=probe.ok,
        reason=probe.reason,
        latency_ms=probe.latency_ms,
        recorded=outcome.recorded,
        position=outcome.position,
        integration=integration_out(outcome.integration),
    )
