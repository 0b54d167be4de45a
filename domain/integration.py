"""Integration: a system a project depends on, checked on a schedule (the integrations monitor).

An integration names what to reach (an http(s) URL, or a tcp host:port), how often to check it
(5..1440 minutes) and the member who answers for it. Each check is recorded as `Checked` with
the status the integration had before it (`previous_status`), so whoever reads the log (the
bell) can tell a failing-after-ok transition from the event alone, without any state.

A project holds at most `MAX_PER_PROJECT` integrations: the `IntegrationRoster` (one per
project, deterministic id) lists the live ones and is saved with every registration and
removal, so two concurrent registrations cannot both take the last place.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import field
from datetime import datetime, timedelta
from enum import StrEnum
from urllib.parse import urlsplit
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.base import TeaimAggregate
from domain.errors import InvalidValueError, RuleViolationError
from domain.project import validate_name
from domain.stamps import Stamp, validate_user_id

MAX_PER_PROJECT = 50
MIN_INTERVAL_MINUTES = 5
MAX_INTERVAL_MINUTES = 1440
MAX_TARGET_LENGTH = 2000
# A host name as DNS allows it (labels of letters, digits and '-', dots between).
_HOST_NAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$"
)


class IntegrationKind(StrEnum):
    """What a check does: an HTTP(S) request (HEAD, then GET), or a TCP connect."""

    HTTP = "http"
    TCP = "tcp"


class IntegrationStatus(StrEnum):
    """The outcome of the latest check (unknown until the first one)."""

    UNKNOWN = "unknown"
    OK = "ok"
    FAILING = "failing"


class CheckReason(StrEnum):
    """Why a check failed: stable codes (they reach the API, logs and the bell)."""

    DNS = "dns"
    REFUSED = "refused"
    TIMEOUT = "timeout"
    TLS = "tls"
    HTTP_5XX = "http_5xx"
    HTTP_4XX = "http_4xx"
    BLOCKED_ADDRESS = "blocked_address"
    INVALID_TARGET = "invalid_target"
    ERROR = "error"


def integration_roster_id(project_id: UUID) -> UUID:
    """The id of a project's roster of integrations."""
    return uuid5(NAMESPACE_URL, f"teaim:project:{project_id}:integrations")


def validate_interval(minutes: int) -> int:
    """A check interval in whole minutes, within the bounds."""
    if isinstance(minutes, bool) or not MIN_INTERVAL_MINUTES <= minutes <= MAX_INTERVAL_MINUTES:
        raise InvalidValueError(
            f"interval must be {MIN_INTERVAL_MINUTES}-{MAX_INTERVAL_MINUTES} minutes"
        )
    return minutes


def validate_target(kind: IntegrationKind, target: str) -> str:
    """An http(s) URL without credentials, or a tcp `host:port`; bounded, no spaces."""
    cleaned = target.strip()
    if not cleaned or len(cleaned) > MAX_TARGET_LENGTH:
        raise InvalidValueError(f"target must be 1-{MAX_TARGET_LENGTH} characters")
    if any(ch.isspace() or not ch.isprintable() for ch in cleaned):
        raise InvalidValueError("target must not contain spaces or control characters")
    if kind is IntegrationKind.HTTP:
        _check_url(cleaned)
    else:
        host_and_port(cleaned)
    return cleaned


def _check_url(url: str) -> None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidValueError("target is not a valid URL") from exc
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidValueError("target URL must use http or https")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise InvalidValueError("target URL must not carry credentials")
    if not parts.hostname:
        raise InvalidValueError("target URL must name a host")
    if port == 0:
        raise InvalidValueError("target URL port must be 1-65535")


def host_and_port(target: str) -> tuple[str, int]:
    """The host and port of a tcp target (`db.example.com:5432`, `[2001:db8::1]:443`)."""
    host, sep, port_text = target.rpartition(":")
    if not sep or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise InvalidValueError("tcp target must be host:port with a port of 1-65535")
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError as exc:
            raise InvalidValueError("tcp target has an invalid IPv6 address") from exc
        return host[1:-1], int(port_text)
    if not _HOST_NAME.fullmatch(host):
        raise InvalidValueError("tcp target must name a host (letters, digits, '-', '.')")
    return host, int(port_text)


class Integration(TeaimAggregate):
    """One monitored integration of a project, and the outcome of its latest check."""

    project_id: UUID = field(init=False)
    name: str = field(init=False)
    kind: IntegrationKind = field(init=False)
    target: str = field(init=False)
    interval_minutes: int = field(init=False)
    owner: str = field(init=False)
    status: IntegrationStatus = field(init=False)
    reason: str | None = field(init=False)
    latency_ms: int | None = field(init=False)
    last_checked_at: datetime | None = field(init=False)
    registered_at: datetime = field(init=False)
    removed: bool = field(init=False)

    class Registered(TeaimAggregate.Created):
        name: str
        kind: str
        target: str
        interval_minutes: int
        owner: str

        def apply(self, integration: Integration) -> None:
            assert self.project_id is not None
            integration.project_id = self.project_id
            integration.name = self.name
            integration.kind = IntegrationKind(self.kind)
            integration.target = self.target
            integration.interval_minutes = self.interval_minutes
            integration.owner = self.owner
            integration.status = IntegrationStatus.UNKNOWN
            integration.reason = None
            integration.latency_ms = None
            integration.last_checked_at = None
            integration.registered_at = self.timestamp
            integration.removed = False

    class Updated(TeaimAggregate.Event):
        # The whole description after the change; `reset` when what is checked changed (the
        # status goes back to unknown and the integration is due at once).
        name: str
        kind: str
        target: str
        interval_minutes: int
        owner: str
        reset: bool

        def apply(self, integration: Integration) -> None:
            integration.name = self.name
            integration.kind = IntegrationKind(self.kind)
            integration.target = self.target
            integration.interval_minutes = self.interval_minutes
            integration.owner = self.owner
            if self.reset:
                integration.status = IntegrationStatus.UNKNOWN
                integration.reason = None
                integration.latency_ms = None
                integration.last_checked_at = None

    class Removed(TeaimAggregate.Event):
        def apply(self, integration: Integration) -> None:
            integration.removed = True

    class Checked(TeaimAggregate.Event):
        ok: bool
        reason: str | None
        latency_ms: int | None
        checked_at: datetime
        previous_status: str

        def apply(self, integration: Integration) -> None:
            integration.status = IntegrationStatus.OK if self.ok else IntegrationStatus.FAILING
            integration.reason = self.reason
            integration.latency_ms = self.latency_ms
            integration.last_checked_at = self.checked_at

    @classmethod
    def register(
        cls,
        *,
        integration_id: UUID,
        name: str,
        kind: IntegrationKind,
        target: str,
        interval_minutes: int,
        owner: str,
        stamp: Stamp,
    ) -> Integration:
        """Describe a new integration of the stamp's project (its status is unknown)."""
        if stamp.project_id is None:
            raise InvalidValueError("an integration belongs to a project")
        integration: Integration = cls._create_stamped(
            cls.Registered,
            id=integration_id,
            stamp=stamp,
            name=validate_name(name),
            kind=IntegrationKind(kind).value,
            target=validate_target(IntegrationKind(kind), target),
            interval_minutes=validate_interval(interval_minutes),
            owner=validate_user_id(owner),
        )
        return integration

    def update(
        self,
        *,
        stamp: Stamp,
        name: str | None = None,
        kind: IntegrationKind | None = None,
        target: str | None = None,
        interval_minutes: int | None = None,
        owner: str | None = None,
    ) -> bool:
        """Change what is given; False when nothing changes (no event)."""
        self._require_live()
        new_kind = self.kind if kind is None else IntegrationKind(kind)
        new_target = self.target if target is None else target
        if kind is not None or target is not None:
            new_target = validate_target(new_kind, new_target)
        new = {
            "name": self.name if name is None else validate_name(name),
            "kind": new_kind.value,
            "target": new_target,
            "interval_minutes": self.interval_minutes
            if interval_minutes is None
            else validate_interval(interval_minutes),
            "owner": self.owner if owner is None else validate_user_id(owner),
        }
        old = {
            "name": self.name,
            "kind": self.kind.value,
            "target": self.target,
            "interval_minutes": self.interval_minutes,
            "owner": self.owner,
        }
        if new == old:
            return False
        reset = (new["kind"], new["target"]) != (old["kind"], old["target"])
        self._trigger(self.Updated, stamp, reset=reset, **new)
        return True

    def remove(self, *, stamp: Stamp) -> None:
        """Stop monitoring it (its history stays)."""
        self._require_live()
        self._trigger(self.Removed, stamp)

    def record_check(
        self, *, ok: bool, reason: CheckReason | None, latency_ms: int | None, stamp: Stamp
    ) -> None:
        """Record a check's outcome: ok with its latency, or failing with a reason."""
        self._require_live()
        if ok and reason is not None:
            raise InvalidValueError("a passing check has no failure reason")
        if not ok and reason is None:
            raise InvalidValueError("a failing check needs a reason")
        if latency_ms is not None and not 0 <= latency_ms <= 86_400_000:
            raise InvalidValueError("latency must be 0-86400000 ms")
        self._trigger(
            self.Checked,
            stamp,
            ok=ok,
            reason=None if reason is None else CheckReason(reason).value,
            latency_ms=latency_ms,
            checked_at=stamp.at,
            previous_status=self.status.value,
        )

    def due_at(self) -> datetime:
        """When the next scheduled check is due (at once when never checked)."""
        if self.last_checked_at is None:
            return self.registered_at
        return self.last_checked_at + timedelta(minutes=self.interval_minutes)

    def is_due(self, now: datetime) -> bool:
        """Whether a scheduled check is due at `now`."""
        return not self.removed and self.due_at() <= now

    def _require_live(self) -> None:
        if self.removed:
            raise RuleViolationError("integration was removed", integration_id=self.id)


class IntegrationRoster(TeaimAggregate):
    """The live integrations of one project (at most MAX_PER_PROJECT)."""

    project_id: UUID = field(init=False)
    members: list[UUID] = field(init=False)

    class Opened(TeaimAggregate.Created):
        def apply(self, roster: IntegrationRoster) -> None:
            assert self.project_id is not None
            roster.project_id = self.project_id
            roster.members = []

    class Added(TeaimAggregate.Event):
        integration_id: UUID

        def apply(self, roster: IntegrationRoster) -> None:
            roster.members.append(self.integration_id)

    class Dropped(TeaimAggregate.Event):
        integration_id: UUID

        def apply(self, roster: IntegrationRoster) -> None:
            roster.members.remove(self.integration_id)

    @classmethod
    def open(cls, *, stamp: Stamp) -> IntegrationRoster:
        """The empty roster of the stamp's project."""
        if stamp.project_id is None:
            raise InvalidValueError("a roster belongs to a project")
        roster: IntegrationRoster = cls._create_stamped(
            cls.Opened, id=integration_roster_id(stamp.project_id), stamp=stamp
        )
        return roster

    def add(self, integration_id: UUID, *, stamp: Stamp) -> None:
        """Take a place for a new integration, if one is left."""
        if len(self.members) >= MAX_PER_PROJECT:
            raise RuleViolationError(
                f"a project has at most {MAX_PER_PROJECT} integrations", project_id=self.project_id
            )
        self._trigger(self.Added, stamp, integration_id=integration_id)

    def drop(self, integration_id: UUID, *, stamp: Stamp) -> None:
        """Give back a removed integration's place."""
        if integration_id in self.members:
            self._trigger(self.Dropped, stamp, integration_id=integration_id)
