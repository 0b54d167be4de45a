"""A principal probing random project ids cannot grow the log without bound, and the auditor
still sees every refusal: the first ones as events, the rest as one coalesced count."""

from __future__ import annotations

from uuid import uuid4

from application.config import AppConfig
from domain.denial import COALESCED
from tests.api.conftest import Api, assert_problem, dev

PROBES = 150


def test_a_scan_of_random_project_ids_is_coalesced_and_fully_counted(api: Api) -> None:
    config = AppConfig()
    org = api.new_org()
    start = api.max_position()
    for _ in range(PROBES):
        response = api.client.get(f"/api/projects/{uuid4()}", headers=dev("mallory", org))
        assert_problem(response, 404, "not-found")
    # The burst is recorded one by one; the rest is held as a count, not written.
    assert len(api.rows_after(start)) == config.denial_burst
    # When the window has closed, the next refusal (anyone's) writes the count.
    api.clock.advance(config.denial_window)
    response = api.client.get(f"/api/projects/{uuid4()}", headers=dev("nina", org))
    assert_problem(response, 404)
    denials = api.denials_after(start)
    assert len(denials) == config.denial_burst + 2
    (count,) = [d for d in denials if d.reason == COALESCED]
    assert (count.actor, count.org_id) == ("mallory", org)
    assert sum(1 + d.repeated for d in denials if d.actor == "mallory") == PROBES

    # What an auditor reads: the count is a `security.denied` entry of the feed.
    api.catch_up()
    feed = api.client.get("/api/audit/list?limit=200", headers=dev("olive", org))
    assert feed.status_code == 200, feed.text
    coalesced = [e for e in feed.json()["items"] if e["details"].get("reason") == COALESCED]
    assert len(coalesced) == 1
    entry = coalesced[0]
    assert (entry["action"], entry["outcome"], entry["actor"]) == (
        "security.denied",
        "denied",
        "mallory",
    )
    assert entry["details"]["repeated"] == PROBES - config.denial_burst - 1
    assert len(entry["details"]["targets"]) == 10
