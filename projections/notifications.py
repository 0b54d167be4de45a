"""The bell: a notification per recipient for what the rule table says they must hear about.

Besides the `notifications` rows it keeps two tables of its own, so that recipients and labels
are those of the moment of each event (a member added later is not told about an earlier
sign-off request; a stage renamed later keeps the title its notification was written with):
- `notification_members`: each project's members, roles and signer toggles;
- `notification_subjects`: display labels of projects, stages, artifacts and RAID items, and
  the person each belongs to (an artifact's uploader, a RAID item's owner).

Marks (inbox.* events) move a notification through unseen -> seen -> read, or archived; the
times they record are the events' own, so a replay gives identical rows.

Handlers run in the order they are defined: `_notify` first, so an event is judged against
the project as it was before it, then the tracking of what the event changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.artifact import Artifact
from domain.base import TeaimAggregate
from domain.inbox import Inbox, Mark, NoticeState, next_state
from domain.integration import Integration
from domain.project import Project
from domain.raid import RaidItem
from domain.roles import Role
from domain.stage import Stage
from projections.base import Lookup
from projections.dispatch import EventHandlers, event_class_of, handles, is_event
from projections.notification_rules import (
    EVENT_RULES,
    PLANNED_RULES,
    Facts,
    Member,
    Rule,
    applies,
    link_for,
    message_values,
    recipients,
    render,
)
from projections.ops import Batch, Insert, Patch, Remove, Upsert
from projections.records import EventRecord

NOTIFICATIONS = "notifications"
MEMBERS = "notification_members"
SUBJECTS = "notification_subjects"

# States a "mark all" may change, per mark (archived never changes; see domain.inbox).
_LIVE = (NoticeState.UNSEEN, NoticeState.SEEN, NoticeState.READ)


def notification_id(position: int, recipient: str) -> UUID:
    """The id of a recipient's notification for the event at `position` (stable across replays)."""
    return uuid5(NAMESPACE_URL, f"teaim:notification:{position}:{recipient}")


@dataclass(frozen=True, slots=True)
class Subject:
    """What a notification can be about: its kind, display label and the person it belongs to."""

    kind: str
    label: str
    person: str | None


class NotificationsProjection(EventHandlers):
    """Writes the bell's notifications, and applies their recipients' marks."""

    name: ClassVar[str] = "notifications"
    tables: ClassVar[tuple[str, ...]] = (NOTIFICATIONS, MEMBERS, SUBJECTS)

    # Notifications ---------------------------------------------------------------------

    @handles(*EVENT_RULES)
    def _notify(
        self, event: TeaimAggregate.Event, record: EventRecord, out: Batch, lookup: Lookup
    ) -> None:
        """Notify whom the event's rule names, with the project as it was before the event."""
        _notify_by_rule(EVENT_RULES[event_class_of(event)], event, record, out, lookup)

    @handles(TeaimAggregate.Event)
    def _notify_planned(
        self, event: TeaimAggregate.Event, record: EventRecord, out: Batch, lookup: Lookup
    ) -> None:
        """Notify by a rule written ahead of its event class, matched by the action it will have.

        The one place the bell matches an action name: no class exists to match yet. A test
        fails as soon as a domain class has a planned action, so the rule moves to EVENT_RULES.
        """
        rule = PLANNED_RULES.get(record.action)
        if rule is not None:
            _notify_by_rule(rule, event, record, out, lookup)

    # Marks -----------------------------------------------------------------------------

    @handles(Inbox.Marked)
    def _marked(self, event: Inbox.Marked, record: EventRecord, out: Batch, lookup: Lookup) -> None:
        # Org and recipient are part of the match: a mark can only ever touch its own inbox.
        row = _one(
            lookup,
            NOTIFICATIONS,
            {"id": event.notification_id, "org_id": record.org_id, "recipient": event.recipient},
        )
        if row is not None:
            _apply_mark(row, Mark(event.mark), record.occurred_at, out)

    @handles(Inbox.AllMarked)
    def _all_marked(
        self, event: Inbox.AllMarked, record: EventRecord, out: Batch, lookup: Lookup
    ) -> None:
        mark = Mark(event.mark)
        # Everything earlier in the log exists by now; nothing later can be marked yet.
        bound = record.position if event.up_to is None else min(event.up_to, record.position)
        for state in _LIVE:
            if next_state(state, mark) is state:
                continue
            rows = lookup.rows(
                NOTIFICATIONS,
                {"org_id": record.org_id, "recipient": event.recipient, "state": state.value},
            )
            for row in sorted(rows, key=lambda r: int(r["position"])):
                if int(row["position"]) <= bound:
                    _apply_mark(row, mark, record.occurred_at, out)

    # Members, as each event leaves them --------------------------------------------------

    @handles(Project.Created)
    def _project_created(
        self, event: Project.Created, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        if record.project_id is not None:
            out.add(_member_upsert(record, event.owner, Role.OWNER.value, signer=False))
        _add_subject(record, out, _project_subject(event))

    @handles(Project.MemberAdded)
    def _member_added(
        self, event: Project.MemberAdded, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        if record.project_id is not None:
            out.add(_member_upsert(record, event.user_id, event.role, signer=event.signer))

    @handles(Project.MemberRoleChanged)
    def _member_role_changed(
        self, event: Project.MemberRoleChanged, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        if record.project_id is not None:
            out.add(Patch(MEMBERS, _member_key(record, event.user_id), {"role": event.role}))

    @handles(Project.MemberSignerToggled)
    def _member_signer_toggled(
        self, event: Project.MemberSignerToggled, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        if record.project_id is not None:
            out.add(Patch(MEMBERS, _member_key(record, event.user_id), {"signer": event.signer}))

    @handles(Project.MemberRemoved)
    def _member_removed(
        self, event: Project.MemberRemoved, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        if record.project_id is not None:
            out.add(Remove(MEMBERS, _member_key(record, event.user_id)))

    # Subjects: labels and the person each belongs to ---------------------------------------

    @handles(Stage.Created)
    def _stage_created(
        self, event: Stage.Created, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        _add_subject(record, out, _stage_subject(event))

    @handles(Artifact.Registered, Artifact.Uploaded)
    def _artifact_registered(
        self,
        event: Artifact.Registered | Artifact.Uploaded,
        record: EventRecord,
        out: Batch,
        _lookup: Lookup,
    ) -> None:
        _add_subject(record, out, _artifact_subject(event, record))

    @handles(RaidItem.Created)
    def _raid_created(
        self, event: RaidItem.Created, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        _add_subject(record, out, _raid_subject(event))

    @handles(Integration.Registered)
    def _integration_registered(
        self, event: Integration.Registered, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        # An integration belongs to its owner (told of its failures with the pms).
        _add_subject(record, out, Subject("integration", event.name or "?", event.owner))

    @handles(Integration.Updated)
    def _integration_updated(
        self, event: Integration.Updated, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        out.add(
            Patch(
                SUBJECTS,
                {"subject_id": record.originator_id},
                {"label": event.name, "person": event.owner},
            )
        )

    @handles(Project.Renamed)
    def _project_renamed(
        self, event: Project.Renamed, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        _relabel(record, out, event.name)

    @handles(Stage.Renamed)
    def _stage_renamed(
        self, event: Stage.Renamed, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        _relabel(record, out, event.title)

    @handles(Artifact.Renamed)
    def _artifact_renamed(
        self, event: Artifact.Renamed, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        _relabel(record, out, event.name)

    @handles(RaidItem.Updated)
    def _raid_updated(
        self, event: RaidItem.Updated, record: EventRecord, out: Batch, _lookup: Lookup
    ) -> None:
        changes: dict[str, Any] = {}
        if "title" in event.changed and event.title:
            changes["label"] = event.title
        if "owner" in event.changed:
            changes["person"] = event.owner or None
        if changes:
            out.add(Patch(SUBJECTS, {"subject_id": record.originator_id}, changes))


def _notify_by_rule(
    rule: Rule, event: TeaimAggregate.Event, record: EventRecord, out: Batch, lookup: Lookup
) -> None:
    """Insert one notification per recipient the rule names (none outside a project)."""
    project_id = record.project_id
    # Most integration checks change nothing anyone must hear of: decided before any lookup.
    if project_id is None or not applies(rule, record.payload):
        return
    # The rule names the payload fields it reads (checked against the event class).
    payload = record.payload
    subject_id = _subject_id(rule, record)
    subject = _one(lookup, SUBJECTS, {"org_id": record.org_id, "subject_id": subject_id})
    members = [
        Member(user_id=row["user_id"], role=Role(row["role"]), signer=bool(row["signer"]))
        for row in lookup.rows(MEMBERS, {"org_id": record.org_id, "project_id": project_id})
    ]
    facts = Facts(
        actor=record.actor,
        payload=payload,
        members=members,
        subject_person=None if subject is None else subject["person"],
    )
    who = recipients(rule, facts)
    if not who:
        return
    project = _one(lookup, SUBJECTS, {"org_id": record.org_id, "subject_id": project_id})
    # A subject created by this very event is not tracked yet: the event labels it.
    created = _created_subject(event, record)
    subject_label = subject["label"] if subject is not None else created.label if created else None
    title, body = render(
        rule,
        message_values(
            payload,
            actor=record.actor,
            project=project["label"] if project is not None else "a project",
            subject=subject_label or "?",
        ),
    )
    link = link_for(rule.link, project_id, subject_id)
    for recipient in who:
        out.wake(record.org_id, recipient)
        out.add(
            Insert(
                NOTIFICATIONS,
                {
                    "id": notification_id(record.position, recipient),
                    "org_id": record.org_id,
                    "project_id": project_id,
                    "recipient": recipient,
                    "position": record.position,
                    "action": record.action,
                    "actor": record.actor,
                    "title": title,
                    "body": body,
                    "link": link,
                    "created_at": record.occurred_at,
                    "state": NoticeState.UNSEEN.value,
                    "seen_at": None,
                    "read_at": None,
                    "archived_at": None,
                },
            )
        )


def _apply_mark(row: dict[str, Any], mark: Mark, at: datetime, out: Batch) -> None:
    """Queue the change a mark makes to one notification row (nothing if it changes nothing)."""
    state = NoticeState(row["state"])
    new = next_state(state, mark)
    if new is state:
        return
    seen_at, read_at, archived_at = row["seen_at"], row["read_at"], row["archived_at"]
    if new is NoticeState.ARCHIVED:
        archived_at = at
    elif new is NoticeState.READ:
        seen_at, read_at = seen_at or at, at
    elif new is NoticeState.SEEN:
        # First sight, or a read notification marked unread (it stays seen).
        seen_at, read_at = seen_at or at, None
    # The recipient's stream wakes for the new counts (the row is theirs: see `_marked`).
    out.wake(row["org_id"], row["recipient"])
    # Every mark patches the same columns: consecutive marks share one statement.
    out.add(
        Patch(
            NOTIFICATIONS,
            {"id": row["id"]},
            {
                "state": new.value,
                "seen_at": seen_at,
                "read_at": read_at,
                "archived_at": archived_at,
            },
        )
    )


def _member_key(record: EventRecord, user_id: str) -> dict[str, Any]:
    return {"org_id": record.org_id, "project_id": record.project_id, "user_id": user_id}


def _member_upsert(record: EventRecord, user_id: str, role: str, signer: bool) -> Upsert:
    return Upsert(
        MEMBERS,
        ("project_id", "user_id"),
        {
            "org_id": record.org_id,
            "project_id": record.project_id,
            "user_id": user_id,
            "role": role,
            "signer": signer,
        },
    )


def _project_subject(event: Project.Created) -> Subject:
    return Subject("project", event.name or "?", event.owner)


def _stage_subject(event: Stage.Created) -> Subject:
    return Subject("stage", event.title or "?", None)


def _artifact_subject(
    event: Artifact.Registered | Artifact.Uploaded, record: EventRecord
) -> Subject:
    # An artifact belongs to whoever registered or uploaded it.
    return Subject("artifact", event.name or "?", record.actor)


def _raid_subject(event: RaidItem.Created) -> Subject:
    return Subject("raid", event.title or "?", event.owner or None)


def _created_subject(event: TeaimAggregate.Event, record: EventRecord) -> Subject | None:
    """The subject an event creates, if it creates one."""
    if is_event(event, Project.Created):
        return _project_subject(event)
    if is_event(event, Stage.Created):
        return _stage_subject(event)
    if is_event(event, Artifact.Registered) or is_event(event, Artifact.Uploaded):
        return _artifact_subject(event, record)
    if is_event(event, RaidItem.Created):
        return _raid_subject(event)
    return None


def _add_subject(record: EventRecord, out: Batch, subject: Subject) -> None:
    out.add(
        Upsert(
            SUBJECTS,
            ("subject_id",),
            {
                "subject_id": record.originator_id,
                "org_id": record.org_id,
                "project_id": record.project_id,
                "kind": subject.kind,
                "label": subject.label,
                "person": subject.person,
            },
        )
    )


def _relabel(record: EventRecord, out: Batch, label: str) -> None:
    out.add(Patch(SUBJECTS, {"subject_id": record.originator_id}, {"label": label}))


def _subject_id(rule: Rule, record: EventRecord) -> UUID:
    if rule.subject_field is None:
        return record.originator_id
    return UUID(str(record.payload[rule.subject_field]))


def _one(lookup: Lookup, table: str, where: dict[str, Any]) -> dict[str, Any] | None:
    rows = lookup.rows(table, where)
    return rows[0] if rows else None
