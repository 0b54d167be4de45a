"""`digest_recipients` holds exactly the live subscriptions, read back through RLS."""

from __future__ import annotations

from uuid import UUID

from adapters.postgres.queries.digest_recipients import PostgresDigestRecipients
from domain.digest_subscription import DigestSubscriptions
from domain.stamps import Stamp
from projections.digest_recipients import DigestRecipientsProjection
from tests.api.conftest import Api, dev


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
