"""A mark is checked against the notifications read model: halted for an org, it answers that
org 503 naming the halt (as the bell does), not a 404 for a notification the model holds back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from uuid import UUID

import httpx

from domain.roles import Role
from projections.notifications import NotificationsProjection, notification_id
from projections.registry import all_projections
from tests.api.conftest import Api, assert_problem, dev
from tests.support.poison import event_at, poisoned

MARKS = ("seen", "read", "unread", "archive")


def until(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Wait for what a process learns within its halt check period (bounded; fails loudly)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_a_halted_orgs_marks_answer_503_naming_the_halt(api: Api) -> None:
    sick, well = api.new_org("Sick"), api.new_org("Well")
    projects = {org: api.create_project("olive", org) for org in (sick, well)}
    api.catch_up()
    api.add_member(projects[sick], by="olive", org=sick, user="max")
    poison = api.max_position()
    name = NotificationsProjection.name
    models = [poisoned(p, event_at(poison)) if p.name == name else p for p in all_projections()]
    api.catch_up(*models)
    # Created after the halt: the sick org's notification is held back with its later events.
    ids: dict[UUID, UUID] = {}
    for org in (sick, well):
        api.add_member(projects[org], by="olive", org=org, user="pam", role=Role.MEMBER)
        ids[org] = notification_id(api.max_position(), "pam")
    api.catch_up(*models)

    def marked(org: UUID, mark: str) -> httpx.Response:
        return api.client.post(
            f"/api/notifications/{ids[org]}/{mark}", headers=dev("pam", org, Role.MEMBER)
        )

    until(lambda: marked(sick, "seen").status_code == 503, "the sick org's 503")
    for mark in MARKS:
        body = assert_problem(marked(sick, mark), 503)
        assert body["type"].endswith("/read-model-halted")
        assert body["read_models"] == [name]
    # The other org marks its own notification as usual.
    for mark in MARKS:
        response = marked(well, mark)
        assert response.status_code == 200, (mark, response.text)
