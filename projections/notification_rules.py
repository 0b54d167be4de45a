"""Who the bell tells about what: the rule table, in one place, and its pure helpers.

Each rule maps a domain event class to an audience and a message. The projection gathers the
facts an audience needs (the project's members as they were when the event happened, the
person a subject belongs to, display labels) and these functions decide and render; nothing
here reads a table or a clock, so the same event always gives the same notifications.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from uuid import UUID

from domain.artifact import Artifact
from domain.integration import Integration
from domain.project import Project
from domain.raid import RaidItem
from domain.roles import RANK, Permission, Role, allows
from domain.signoff import SignOff
from domain.stage import Stage
from projections.events import EventClass, action_of

# A payload value no event holds (a condition on a missing field never holds).
_ABSENT = object()

# Long free text (a rejection reason) is cut to this many characters in a message body.
MAX_QUOTE = 300


class Audience(StrEnum):
    """Who a rule notifies (always minus the actor: nobody is told of their own action)."""

    # Every member who may sign: by role, or by the per-member signer toggle.
    SIGNERS = "signers"
    # Members ranked pm or higher (pm, admin, owner).
    PM_AND_ABOVE = "pm_and_above"
    # The person who registered the artifact, and the project's pms.
    UPLOADER_AND_PMS = "uploader_and_pms"
    # The member the event is about (payload `user_id`), even when the event removed them.
    SUBJECT_MEMBER = "subject_member"
    # A RAID item's owner, when the event gives it a new one who is a project member.
    NEW_RAID_OWNER = "new_raid_owner"
    # Everyone in the project.
    ALL_MEMBERS = "all_members"
    # Members ranked pm or higher, and the integration's owner (while a member).
    OWNER_AND_PMS = "owner_and_pms"


class LinkKind(StrEnum):
    """What a notification links to."""

    PROJECT = "project"
    STAGE = "stage"
    ARTIFACT = "artifact"
    RAID = "raid"
    INTEGRATION = "integration"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class When:
    """A rule fires only for events whose payload `field` equals `value` (a transition)."""

    field: str
    value: Any


@dataclass(frozen=True, slots=True)
class Rule:
    """An audience, a title and body template, and what the notification links to.

    Templates use str.format fields from `message_values`; `subject_field` names the payload
    field holding the subject's id when the subject is not the event's own aggregate. The
    payload fields a rule reads (`payload_reads`) are checked against its event class.
    """

    audience: Audience
    title: str
    body: str
    link: LinkKind
    subject_field: str | None = None
    # Every condition must hold, or nobody is told (an integration check tells only when it
    # turns failing after ok, read from the event's own `previous_status`).
    when: tuple[When, ...] = ()


# The rule table, keyed by the domain event class each rule is about.
EVENT_RULES: Mapping[EventClass, Rule] = {
    SignOff.Created: Rule(
        Audience.SIGNERS,
        "Sign-off requested: {stage}",
        "{actor} asked for sign-off of {stage} in {project} (round {round}).",
        LinkKind.STAGE,
        subject_field="stage_id",
    ),
    Stage.SignedOff: Rule(
        Audience.PM_AND_ABOVE,
        "Stage signed off: {stage}",
        "{stage} in {project} was signed off; the last signature was {actor}'s.",
        LinkKind.STAGE,
    ),
    Stage.Rejected: Rule(
        Audience.PM_AND_ABOVE,
        "Stage rejected: {stage}",
        "{actor} rejected {stage} in {project}: {reason}",
        LinkKind.STAGE,
    ),
    Project.MemberAdded: Rule(
        Audience.SUBJECT_MEMBER,
        "Added to {project}",
        "{actor} added you to {project} as {role}.",
        LinkKind.PROJECT,
    ),
    Project.MemberRoleChanged: Rule(
        Audience.SUBJECT_MEMBER,
        "Your role in {project} changed",
        "{actor} made you {role} in {project}.",
        LinkKind.PROJECT,
    ),
    Project.MemberSignerToggled: Rule(
        Audience.SUBJECT_MEMBER,
        "Signing {signing} in {project}",
        "Your permission to sign in {project} was {signing} by {actor}.",
        LinkKind.PROJECT,
    ),
    Project.MemberRemoved: Rule(
        Audience.SUBJECT_MEMBER,
        "Removed from {project}",
        "{actor} removed you from {project}.",
        # A former member can no longer open the project.
        LinkKind.NONE,
    ),
    Project.Archived: Rule(
        Audience.ALL_MEMBERS,
        "{project} archived",
        "{actor} archived {project}; it is read-only until unarchived.",
        LinkKind.PROJECT,
    ),
    Project.Unarchived: Rule(
        Audience.ALL_MEMBERS,
        "{project} unarchived",
        "{actor} unarchived {project}; it accepts changes again.",
        LinkKind.PROJECT,
    ),
    RaidItem.Created: Rule(
        Audience.NEW_RAID_OWNER,
        "Assigned to you: {raid}",
        "{actor} made you the owner of the {kind} {raid} in {project}.",
        LinkKind.RAID,
    ),
    RaidItem.Updated: Rule(
        Audience.NEW_RAID_OWNER,
        "Assigned to you: {raid}",
        "{actor} made you the owner of {raid} in {project}.",
        LinkKind.RAID,
    ),
    Artifact.OcrNeeded: Rule(
        Audience.UPLOADER_AND_PMS,
        "Document needs OCR: {artifact}",
        "{artifact} in {project} is a scan: its text must be recognised before it can be searched.",
        LinkKind.ARTIFACT,
    ),
    # Once per outage: ok -> failing tells; failing -> failing (still down) and unknown ->
    # failing (never seen up) do not; recovery shows on the list, not on the bell.
    Integration.Checked: Rule(
        Audience.OWNER_AND_PMS,
        "Integration failing: {integration}",
        "{integration} in {project} stopped answering ({reason}).",
        LinkKind.INTEGRATION,
        when=(When("ok", False), When("previous_status", "ok")),
    ),
}

# Rules written ahead of their event, keyed by the action it will have (none today: the
# OCR-needed rule waited here until ingestion gave it `Artifact.OcrNeeded`). Nothing can fire
# a planned rule; the day its class lands, a test fails until the rule moves into EVENT_RULES.
PLANNED_RULES: Mapping[str, Rule] = {}

# Every rule by the action it is about (the action is what a notification row records).
RULES: Mapping[str, Rule] = {
    **{action_of(cls): rule for cls, rule in EVENT_RULES.items()},
    **PLANNED_RULES,
}

# Template values taken from the event's payload, and the payload field each one reads.
TEMPLATE_FIELDS: Mapping[str, str] = {
    "role": "role",
    "round": "round",
    "reason": "reason",
    "kind": "kind",
    "signing": "signer",
}
# Payload fields an audience is decided from.
AUDIENCE_FIELDS: Mapping[Audience, frozenset[str]] = {
    Audience.SUBJECT_MEMBER: frozenset({"user_id"}),
    Audience.NEW_RAID_OWNER: frozenset({"owner"}),
}


def payload_reads(rule: Rule) -> frozenset[str]:
    """Every payload field a rule reads: its event class must declare each one."""
    placeholders = {
        name
        for template in (rule.title, rule.body)
        for _, name, _, _ in string.Formatter().parse(template)
        if name
    }
    reads = {TEMPLATE_FIELDS[name] for name in placeholders if name in TEMPLATE_FIELDS}
    reads |= AUDIENCE_FIELDS.get(rule.audience, frozenset())
    if rule.subject_field is not None:
        reads.add(rule.subject_field)
    reads |= {condition.field for condition in rule.when}
    return frozenset(reads)


@dataclass(frozen=True, slots=True)
class Member:
    """A project member as the projection last saw them."""

    user_id: str
    role: Role
    signer: bool


@dataclass(frozen=True, slots=True)
class Facts:
    """What an audience is decided from: the event, and the project as it was before it."""

    actor: str
    payload: Mapping[str, Any]
    members: Sequence[Member]
    # An artifact's uploader, or a RAID item's owner before this event (None when unknown).
    subject_person: str | None = None


def recipients(rule: Rule, facts: Facts) -> list[str]:
    """Who the rule notifies, sorted, never the actor."""
    if not applies(rule, facts.payload):
        return []
    members = {m.user_id: m for m in facts.members}
    audience = rule.audience
    chosen: set[str]
    if audience is Audience.SIGNERS:
        chosen = {
            m.user_id for m in facts.members if allows(m.role, Permission.SIGN, signer=m.signer)
        }
    elif audience is Audience.PM_AND_ABOVE:
        chosen = {m.user_id for m in facts.members if RANK[m.role] >= RANK[Role.PM]}
    elif audience is Audience.UPLOADER_AND_PMS:
        chosen = {m.user_id for m in facts.members if m.role is Role.PM}
        # Only members hear about project content: an uploader who left is not told.
        if facts.subject_person in members:
            chosen.add(facts.subject_person)
    elif audience is Audience.OWNER_AND_PMS:
        chosen = {m.user_id for m in facts.members if RANK[m.role] >= RANK[Role.PM]}
        if facts.subject_person in members:
            chosen.add(facts.subject_person)
    elif audience is Audience.SUBJECT_MEMBER:
        user = facts.payload.get("user_id")
        chosen = {user} if isinstance(user, str) and user else set()
    elif audience is Audience.NEW_RAID_OWNER:
        owner = raid_owner(facts.payload)
        # A RAID owner is free text ("Vendor X"); only a member by that id has a bell.
        new = owner is not None and owner != facts.subject_person and owner in members
        chosen = {owner} if new and owner is not None else set()
    else:
        chosen = set(members)
    chosen.discard(facts.actor)
    return sorted(chosen)


def applies(rule: Rule, payload: Mapping[str, Any]) -> bool:
    """Whether the event meets every condition of the rule (always, for most rules)."""
    return all(payload.get(c.field, _ABSENT) == c.value for c in rule.when)


def raid_owner(payload: Mapping[str, Any]) -> str | None:
    """The owner a RAID created/updated event sets, if it sets one.

    An update leaves the fields it does not change at None, so an unchanged owner reads as
    none set, as does a cleared one.
    """
    owner = payload.get("owner")
    return owner if isinstance(owner, str) and owner else None


def display_actor(actor: str) -> str:
    """How a message names who acted (an external signer by their email)."""
    return actor.removeprefix("external:").removeprefix("service:")


def message_values(
    payload: Mapping[str, Any], *, actor: str, project: str, subject: str
) -> dict[str, str]:
    """The values every template may use, from the event and the labels the projection knows."""
    reason = str(payload.get("reason", "")).strip()
    if len(reason) > MAX_QUOTE:
        reason = reason[: MAX_QUOTE - 1] + "…"
    return {
        "actor": display_actor(actor),
        "project": project,
        "stage": subject,
        "artifact": subject,
        "raid": subject,
        "integration": subject,
        "role": str(payload.get("role", "")),
        "round": str(payload.get("round", "")),
        "reason": reason or "no reason given",
        "kind": str(payload.get("kind", "item")),
        "signing": "granted" if payload.get("signer") else "withdrawn",
    }


class _Values(dict[str, str]):
    # A template naming a value the event lacks renders "?" rather than stopping the
    # projection on a poison event: a clumsy message beats a frozen bell.
    def __missing__(self, key: str) -> str:
        return "?"


def render(rule: Rule, values: Mapping[str, str]) -> tuple[str, str]:
    """The notification's title and body."""
    filled = _Values(values)
    return rule.title.format_map(filled), rule.body.format_map(filled)


def link_for(kind: LinkKind, project_id: UUID, subject_id: UUID | None) -> str | None:
    """The API path the notification opens (None when there is nothing to open)."""
    base = f"/api/projects/{project_id}"
    if kind is LinkKind.PROJECT:
        return base
    if subject_id is None or kind is LinkKind.NONE:
        return None
    if kind is LinkKind.STAGE:
        return f"{base}/stages/{subject_id}"
    if kind is LinkKind.ARTIFACT:
        return f"{base}/artifacts/{subject_id}"
    if kind is LinkKind.INTEGRATION:
        return f"{base}/integrations/{subject_id}"
    return f"{base}/raid/{subject_id}"
