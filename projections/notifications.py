"""The bell: a notification per recipient for what the rule table says they must hear about.

Besides the `notifications` rows it keeps two tables of its own, so that recipients and labels
are those of the moment of each event (a member added later is not told about an earlier
sign-off request; a stage renamed later keeps the title its notification was written with):
- `notification_members`: each project's members, roles and signer toggles;
- `notification_subjects`: display labels of projects, stages, artifacts and RAID items, and
  the person each belongs to (an artifact's uploader, a RAID item's owner).

Marks (inbox.* events) move a notification through unseen -> seen -> read, or archived; the
times they record are the events' own, so a replay gives identical rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.inbox import Mark, NoticeState, next_state
from domain.roles import Role
from projections.base import Lookup
from projections.notification_rules import (
    RULES,
    Facts,
    Member,
    Rule,
    link_for,
    message_values,
    raid_owner,
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


class NotificationsProjection:
    """Writes the bell's notifications, and applies their recipients' marks."""

    name: ClassVar[str] = "notifications"
    tables: ClassVar[tuple[str, ...]] = (NOTIFICATIONS, MEMBERS, SUBJECTS)

    def handle(self, record: EventRecord, out: Batch, lookup: Lookup) -> None:
        """Notify (with the project as it was before the event), then track what changed."""
        action = record.action
        if action == "inbox.marked":
            self._mark_one(record, out, lookup)
            return
        if action == "inbox.all_marked":
            self._mark_all(record, out, lookup)
            return
        rule = RULES.get(action)
        if rule is not None and record.project_id is not None:
            self._notify(rule, record, record.project_id, out, lookup)
        _track_members(record, out)
        _track_subjects(record, out)

    # Notifications ---------------------------------------------------------------------

    def _notify(
        self, rule: Rule, record: EventRecord, project_id: UUID, out: Batch, lookup: Lookup
    ) -> None:
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
        # A subject created by this very event is not tracked yet: its label is in the payload.
        subject_label = subject["label"] if subject is not None else _label_in(payload)
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

    # Marks -----------------------------------------------------------------------------

    def _mark_one(self, record: EventRecord, out: Batch, lookup: Lookup) -> None:
        payload = record.payload
        # Org and recipient are part of the match: a mark can only ever touch its own inbox.
        row = _one(
            lookup,
            NOTIFICATIONS,
            {
                "id": UUID(str(payload["notification_id"])),
                "org_id": record.org_id,
                "recipient": str(payload["recipient"]),
            },
        )
        if row is not None:
            _apply_mark(row, Mark(payload["mark"]), record.occurred_at, out)

    def _mark_all(self, record: EventRecord, out: Batch, lookup: Lookup) -> None:
        payload = record.payload
        mark = Mark(payload["mark"])
        up_to = payload.get("up_to")
        # Everything earlier in the log exists by now; nothing later can be marked yet.
        bound = record.position if up_to is None else min(int(up_to), record.position)
        for state in _LIVE:
            if next_state(state, mark) is state:
                continue
            rows = lookup.rows(
                NOTIFICATIONS,
                {
                    "org_id": record.org_id,
                    "recipient": str(payload["recipient"]),
                    "state": state.value,
                },
            )
            for row in sorted(rows, key=lambda r: int(r["position"])):
                if int(row["position"]) <= bound:
                    _apply_mark(row, mark, record.occurred_at, out)


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


# Tracking ----------------------------------------------------------------------------------


def _track_members(record: EventRecord, out: Batch) -> None:
    action, payload, project_id = record.action, record.payload, record.project_id
    if project_id is None:
        return
    key = {"org_id": record.org_id, "project_id": project_id}
    if action == "project.created":
        out.add(_member_upsert(record, str(payload["owner"]), Role.OWNER.value, signer=False))
    elif action == "project.member_added":
        out.add(
            _member_upsert(
                record, str(payload["user_id"]), str(payload["role"]), bool(payload["signer"])
            )
        )
    elif action == "project.member_role_changed":
        out.add(
            Patch(MEMBERS, {**key, "user_id": str(payload["user_id"])}, {"role": payload["role"]})
        )
    elif action == "project.member_signer_toggled":
        out.add(
            Patch(
                MEMBERS,
                {**key, "user_id": str(payload["user_id"])},
                {"signer": bool(payload["signer"])},
            )
        )
    elif action == "project.member_removed":
        out.add(Remove(MEMBERS, {**key, "user_id": str(payload["user_id"])}))


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


# Events that create a subject: (kind, payload field of its label).
_SUBJECT_CREATED = {
    "project.created": ("project", "name"),
    "stage.created": ("stage", "title"),
    "artifact.registered": ("artifact", "name"),
    "raiditem.created": ("raid", "title"),
}
# Events that relabel one: payload field of the new label.
_SUBJECT_RENAMED = {
    "project.renamed": "name",
    "stage.renamed": "title",
    "artifact.renamed": "name",
}


def _track_subjects(record: EventRecord, out: Batch) -> None:
    action, payload = record.action, record.payload
    subject_id = record.originator_id
    if action in _SUBJECT_CREATED:
        kind, _ = _SUBJECT_CREATED[action]
        person = (
            str(payload["owner"])
            if kind == "project"
            else record.actor
            if kind == "artifact"
            else raid_owner(payload)
        )
        out.add(
            Upsert(
                SUBJECTS,
                ("subject_id",),
                {
                    "subject_id": subject_id,
                    "org_id": record.org_id,
                    "project_id": record.project_id,
                    "kind": kind,
                    "label": _label_in(payload) or "?",
                    "person": person,
                },
            )
        )
    elif action in _SUBJECT_RENAMED:
        label = str(payload[_SUBJECT_RENAMED[action]])
        out.add(Patch(SUBJECTS, {"subject_id": subject_id}, {"label": label}))
    elif action == "raiditem.updated":
        fields = payload.get("fields")
        if not isinstance(fields, dict):
            return
        changes: dict[str, Any] = {}
        if isinstance(fields.get("title"), str):
            changes["label"] = fields["title"]
        if "owner" in fields:
            changes["person"] = raid_owner(payload)
        if changes:
            out.add(Patch(SUBJECTS, {"subject_id": subject_id}, changes))


def _label_in(payload: dict[str, Any]) -> str | None:
    """The display label an event carries for its own subject, if any."""
    for field_name in ("name", "title"):
        value = payload.get(field_name)
        if isinstance(value, str) and value:
            return value
    fields = payload.get("fields")
    if isinstance(fields, dict) and isinstance(fields.get("title"), str):
        return str(fields["title"])
    return None


def _subject_id(rule: Rule, record: EventRecord) -> UUID:
    if rule.subject_field is None:
        return record.originator_id
    return UUID(str(record.payload[rule.subject_field]))


def _one(lookup: Lookup, table: str, where: dict[str, Any]) -> dict[str, Any] | None:
    rows = lookup.rows(table, where)
    return rows[0] if rows else None
