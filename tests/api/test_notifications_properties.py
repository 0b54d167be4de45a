"""Hypothesis: whatever events and marks happen, the bell's counts are its items in each state.

Each example runs in an org of its own on one database for the module, so examples cannot
see each other. Events that notify `max` (his signer toggle flipped by the owner) interleave
with his marks through the HTTP API; after every step the counts must equal the number of
items the list returns in each state, and the states must be what the state machine says.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.inbox import Mark, NoticeState, next_state
from projections.notifications import NotificationsProjection, notification_id
from tests.api.conftest import Api, dev, service_ctx
from tests.support.catch_up import catch_up

URL = "/api/notifications"
ONE = {Mark.SEEN: "seen", Mark.READ: "read", Mark.UNREAD: "unread", Mark.ARCHIVED: "archive"}
ALL = {Mark.SEEN: "seen", Mark.READ: "read", Mark.ARCHIVED: "archive"}

# ("notify",) | ("one", which, mark) | ("all", mark, up_to: None or which)
Step = tuple[Any, ...]
steps = st.lists(
    st.one_of(
        st.just(("notify",)),
        st.tuples(st.just("one"), st.integers(0, 50), st.sampled_from(list(ONE))),
        st.tuples(st.just("all"), st.sampled_from(list(ALL)), st.none() | st.integers(0, 50)),
    ),
    min_size=1,
    max_size=10,
)


def _listed(api: Api, org: UUID, state: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"state": state, "limit": 200}
        if cursor:
            params["cursor"] = cursor
        page = api.client.get(URL, params=params, headers=dev("max", org)).json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=steps)
def test_counts_always_equal_the_items_in_each_state(module_api: Api, steps: list[Step]) -> None:
    api = module_api
    org = api.new_org()
    project = api.create_project("olive", org)
    api.add_member(project, by="olive", org=org, user="max")
    catch_up(api.database_url, NotificationsProjection())
    model: dict[int, NoticeState] = {
        item["position"]: NoticeState.UNSEEN for item in _listed(api, org, "all")
    }
    signer = False
    for step in steps:
        if step[0] == "notify":
            signer = not signer
            result = api.runtime.app.update_member(
                ctx=service_ctx(org), project_id=project, user_id="max", signer=signer
            )
            model[result.position] = NoticeState.UNSEEN
        elif step[0] == "one":
            _, which, mark = step
            position = sorted(model)[which % len(model)]
            target = notification_id(position, "max")
            response = api.client.post(f"{URL}/{target}/{ONE[mark]}", headers=dev("max", org))
            assert response.status_code == 200, response.text
            model[position] = next_state(model[position], mark)
        else:
            _, mark, which = step
            up_to = None if which is None else sorted(model)[which % len(model)]
            params = {} if up_to is None else {"up_to": up_to}
            response = api.client.post(f"{URL}/{ALL[mark]}", params=params, headers=dev("max", org))
            assert response.status_code == 200, response.text
            for position, state in model.items():
                if up_to is None or position <= up_to:
                    model[position] = next_state(state, mark)
        catch_up(api.database_url, NotificationsProjection())
        counts = api.client.get(URL, headers=dev("max", org)).json()["counts"]
        listed = {state: _listed(api, org, state) for state in ("unseen", "unread", "inbox")}
        assert counts == {
            "unseen": len(listed["unseen"]),
            "unread": len(listed["unread"]),
            "total": len(listed["inbox"]),
        }
        assert {i["position"]: i["state"] for i in _listed(api, org, "all")} == {
            position: state.value for position, state in model.items()
        }
