"""`digest_recipients` holds exactly the live subscriptions, read back through RLS."""

from __future__ import annotations

from uuid import UUID, uuid4

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from adapters.postgres.queries.digest_recipients import PostgresDigestRecipients
from application.unsubscribe_tokens import UnsubscribeTarget, unsubscribe_token
from domain.digest_subscription import DigestSubscriptions
from domain.errors import RuleViolationError
from domain.roles import Role
from domain.stamps import Stamp
from projections.digest_recipients import DigestRecipientsProjection
from tests.api.conftest import Api, dev
from tests.support.contexts import public, user


def recipients(api: Api, org: UUID, project: UUID) -> list[tuple[str, str | None, str]]:
    api.catch_up(DigestRecipientsProjection())
    rows = PostgresDigestRecipients(api.runtime.read_db).recipients(org, project)
    return [(r.address, r.user_id, r.source) for r in rows]


def test_rows_follow_opt_ins_externals_links_and_members_leaving(api: Api) -> None:
    org = api.new_org()
    other_org = api.new_org()
    project = api.create_project("olive", org)
    api.add_member(project, by="olive", org=org, user="max")
    stamp = Stamp(org, "olive", "cid-subs", api.clock.now(), project)
    subs = DigestSubscriptions.open(project_id=project, stamp=stamp)
    subs.opt_in(user_id="olive", address="olive@example.com", stamp=stamp)
    subs.opt_in(user_id="max", address="max@example.com", stamp=stamp)
    subs.add_external(address="client@example.com", stamp=stamp)
    subs.add_external(address="sponsor@example.com", stamp=stamp)
    api.runtime.app.save(subs)
    assert recipients(api, org, project) == [
        ("client@example.com", None, "external"),
        ("max@example.com", "max", "member"),
        ("olive@example.com", "olive", "member"),
        ("sponsor@example.com", None, "external"),
    ]
    # Another org reads nothing of it, even naming the project.
    assert recipients(api, other_org, project) == []

    subs.opt_in(user_id="olive", address="olive@work.example", stamp=stamp)
    subs.unsubscribe_by_link(address="sponsor@example.com", stamp=stamp)
    subs.remove_external(address="client@example.com", stamp=stamp)
    api.runtime.app.save(subs)
    assert recipients(api, org, project) == [
        ("max@example.com", "max", "member"),
        ("olive@work.example", "olive", "member"),
    ]

    response = api.client.delete(f"/api/projects/{project}/members/max", headers=dev("olive", org))
    assert response.status_code == 200, response.text
    assert recipients(api, org, project) == [("olive@work.example", "olive", "member")]
    api.add_member(project, by="olive", org=org, user="max")
    assert recipients(api, org, project) == [
        ("max@example.com", "max", "member"),
        ("olive@work.example", "olive", "member"),
    ]


USERS = ["ann", "bob", "cy"]
ADDRESSES = ["a@example.com", "b@example.com", "c@example.com"]
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("in"), st.sampled_from(USERS), st.sampled_from(ADDRESSES)),
        st.tuples(st.just("out"), st.sampled_from(USERS), st.just("")),
        st.tuples(st.just("add"), st.just(""), st.sampled_from(ADDRESSES)),
        st.tuples(st.just("remove"), st.just(""), st.sampled_from(ADDRESSES)),
        st.tuples(st.just("link"), st.just(""), st.sampled_from(ADDRESSES)),
        st.tuples(st.just("leave"), st.sampled_from(USERS), st.just("")),
        st.tuples(st.just("join"), st.sampled_from(USERS), st.just("")),
    ),
    max_size=25,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=STEPS)
# Leaving and coming back; and a link used while away.
@example(steps=[("in", "ann", "a@example.com"), ("leave", "ann", ""), ("join", "ann", "")])
@example(
    steps=[
        ("in", "bob", "b@example.com"),
        ("leave", "bob", ""),
        ("link", "", "b@example.com"),
        ("add", "", "b@example.com"),
        ("join", "bob", ""),
    ]
)
def test_the_read_model_always_lists_what_the_api_shows(
    api: Api, steps: list[tuple[str, str, str]]
) -> None:
    """Whatever members, owners, links and membership changes do, in any order, the digest's
    recipients (the table) are exactly the recipients the API lists."""
    app = api.runtime.app
    org = api.new_org()
    owner = user("olive", org, Role.OWNER)
    project = app.create_project(ctx=owner, code=f"H-{uuid4().hex[:8]}", name="P").id
    members = set(USERS)
    for name in USERS:
        app.add_member(ctx=owner, project_id=project, user_id=name, role=Role.MEMBER, signer=False)
    for action, who, address in steps:
        try:
            if action == "in" and who in members:
                app.set_my_digest_subscription(
                    ctx=user(who, org), project_id=project, subscribed=True, address=address
                )
            elif action == "out" and who in members:
                app.set_my_digest_subscription(
                    ctx=user(who, org), project_id=project, subscribed=False, address=None
                )
            elif action == "add":
                app.add_digest_recipient(ctx=owner, project_id=project, address=address)
            elif action == "remove":
                app.remove_digest_recipient(ctx=owner, project_id=project, address=address)
            elif action == "link":
                key = app.config.unsubscribe_key
                token = unsubscribe_token(key, UnsubscribeTarget(org, project, address))
                app.unsubscribe_by_link(token=token, ctx=public())
            elif action == "leave" and who in members:
                app.remove_member(ctx=owner, project_id=project, user_id=who)
                members.discard(who)
            elif action == "join" and who not in members:
                app.add_member(
                    ctx=owner, project_id=project, user_id=who, role=Role.MEMBER, signer=False
                )
                members.add(who)
        except RuleViolationError:
            pass  # an address another recipient holds: refused, nothing written
    shown = app.digest_subscriptions(ctx=owner, project_id=project).recipients
    assert shown is not None
    assert recipients(api, org, project) == sorted((s.address, s.user_id, s.source) for s in shown)
