"""The bell's integration rule: a failing-after-ok check tells the pms and the owner, once."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from domain.integration import Integration
from domain.roles import Role
from projections.events import action_of, payload_fields
from projections.notification_rules import (
    RULES,
    Facts,
    LinkKind,
    Member,
    link_for,
    message_values,
    payload_reads,
    recipients,
    render,
)

TEAM = [
    Member("olive", Role.OWNER, signer=False),
    Member("adam", Role.ADMIN, signer=False),
    Member("pam", Role.PM, signer=False),
    Member("lee", Role.LEAD, signer=False),
    Member("max", Role.MEMBER, signer=False),
]
CHECKED = action_of(Integration.Checked)


def _who(
    *, ok: bool, previous: str, owner: str | None = "lee", actor: str = "service:integrations"
) -> list[str]:
    payload: dict[str, Any] = {"ok": ok, "previous_status": previous, "reason": "http_5xx"}
    return recipients(RULES[CHECKED], Facts(actor, payload, TEAM, subject_person=owner))


def test_ok_then_failing_tells_pm_and_above_and_the_owner() -> None:
    assert _who(ok=False, previous="ok") == ["adam", "lee", "olive", "pam"]


@pytest.mark.parametrize(
    ("ok", "previous"),
    [(False, "failing"), (False, "unknown"), (True, "ok"), (True, "failing"), (True, "unknown")],
)
def test_no_other_transition_tells_anyone(ok: bool, previous: str) -> None:
    assert _who(ok=ok, previous=previous) == []


def test_an_owner_who_left_the_project_is_not_told_and_nor_is_the_actor() -> None:
    assert _who(ok=False, previous="ok", owner="gone") == ["adam", "olive", "pam"]
    assert _who(ok=False, previous="ok", actor="pam") == ["adam", "lee", "olive"]


def test_the_rule_reads_only_fields_the_event_declares() -> None:
    assert payload_reads(RULES[CHECKED]) <= set(payload_fields(Integration.Checked))


def test_the_message_names_the_integration_its_project_and_reason() -> None:
    values = message_values(
        {"reason": "timeout"}, actor="service:integrations", project="Portal", subject="CRM"
    )
    assert render(RULES[CHECKED], values) == (
        "Integration failing: CRM",
        "CRM in Portal stopped answering (timeout).",
    )
    project, subject = UUID(int=1), UUID(int=2)
    assert (
        link_for(LinkKind.INTEGRATION, project, subject)
        == f"/api/projects/{project}/integrations/{subject}"
    )
