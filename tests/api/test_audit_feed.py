"""GET /api/audit/list and /api/audit/export: filters, pages, exports, access, and the record."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest

from adapters.postgres.queries.audit import PostgresAuditFeed
from domain.audit_visibility import AuditScope
from domain.raid import Memory
from domain.roles import Role
from domain.stamps import Stamp
from interfaces.http.routes.audit import encode_cursor
from projections.audit import AuditProjection
from projections.audit_view import AuditFilters as AuditQuery
from projections.telemetry import TelemetryProjection
from tests.api.conftest import EPOCH, Api, assert_problem, dev, service

DAY = timedelta(days=1)
# A stage title that needs every kind of CSV quoting.
# Commas, quotes, a semicolon and non-ASCII: what CSV quoting must survive (titles are one line).
AWKWARD = 'Design, "phase" 1; next été'

Item = dict[str, Any]


def iso(instant: datetime) -> str:
    """An aware instant as a query value."""
    return instant.isoformat()


@dataclass(frozen=True)
class Feed:
    """Two orgs with history over three days; in `org`, pat is pm and mia a member of p1."""

    org: UUID
    other: UUID
    p1: UUID
    p2: UUID
    other_project: UUID
    stage: UUID


def build_feed(api: Api) -> Feed:
    """Events on EPOCH, EPOCH+1d and EPOCH+2d, a denial, and another org's look-alike rows."""
    org, other = api.new_org("Acme"), api.new_org("Globex")
    p1 = api.create_project("olga", org)
    api.add_member(p1, by="olga", org=org, user="pat", role=Role.PM)
    api.add_member(p1, by="olga", org=org, user="mia", role=Role.MEMBER)
    api.clock.advance(DAY)
    stage = api.create_stage(p1, by="olga", org=org, title=AWKWARD)
    api.request_signoff(p1, stage, by="pat", org=org)
    api.clock.advance(DAY)
    p2 = api.create_project("olga", org)
    api.create_stage(p2, by="olga", org=org, title="Zebra crossing")
    refused = api.client.get(f"/api/projects/{p2}", headers=dev("mia", org, Role.MEMBER))
    assert_problem(refused, 404)
    other_project = api.create_project("gus", other)
    api.create_stage(other_project, by="gus", org=other, title="Zebra secret")
    api.catch_up(AuditProjection(), TelemetryProjection())
    return Feed(org, other, p1, p2, other_project, stage)


def listing(api: Api, headers: dict[str, str], **params: Any) -> tuple[list[Item], httpx.Response]:
    """Every item a filter returns, walking all its pages; and the last response."""
    items: list[Item] = []
    cursor: str | None = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = api.client.get("/api/audit/list", params=query, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items, response


def positions(items: list[Item]) -> list[int]:
    """The positions of items, in the order given."""
    return [item["position"] for item in items]


@pytest.fixture
def feed(api: Api) -> Feed:
    """The scene, projected."""
    return build_feed(api)


# The feed itself ---------------------------------------------------------------------------


def test_the_feed_is_every_event_of_the_org_newest_first(api: Api, feed: Feed) -> None:
    stored = [row for row in api.rows_after(0) if row.org_id == feed.org]
    items, _ = listing(api, dev("olga", feed.org), limit=200)
    assert positions(items) == sorted((row.notification_id for row in stored), reverse=True)
    by_position = {row.notification_id: row for row in stored}
    for item in items:
        row = by_position[item["position"]]
        assert item["org_id"] == str(feed.org)
        assert item["aggregate_id"] == str(row.originator_id)
        assert item["aggregate_version"] == row.originator_version
        assert item["project_id"] == (None if row.project_id is None else str(row.project_id))
        assert datetime.fromisoformat(item["occurred_at"]).utcoffset() == timedelta(0)
    actions = [item["action"] for item in items]
    assert {"project.created", "stage.created", "stage.signoff_requested"} <= set(actions)
    (denial,) = [item for item in items if item["outcome"] == "denied"]
    assert denial["action"] == "security.denied"
    assert (denial["actor"], denial["target_kind"], denial["target_id"]) == (
        "mia",
        "project",
        str(feed.p2),
    )
    assert denial["details"]["reason"] == "not_a_member"
    (titled,) = [i for i in items if i["details"].get("title") == AWKWARD]
    assert (titled["action"], titled["actor"]) == ("stage.created", "olga")


FILTERS: dict[str, tuple[Callable[[Feed], dict[str, str]], Callable[[Feed, Item], bool]]] = {
    "action exact": (
        lambda _: {"action": "stage.created"},
        lambda _, i: i["action"] == "stage.created",
    ),
    "action prefix with dot": (
        lambda _: {"action": "stage."},
        lambda _, i: i["action"].startswith("stage."),
    ),
    "action prefix with star": (
        lambda _: {"action": "project.*"},
        lambda _, i: i["action"].startswith("project."),
    ),
    "actor": (lambda _: {"actor": "pat"}, lambda _, i: i["actor"] == "pat"),
    "target": (lambda f: {"target": str(f.stage)}, lambda f, i: i["target_id"] == str(f.stage)),
    "project": (
        lambda f: {"project_id": str(f.p1)},
        lambda f, i: i["project_id"] == str(f.p1),
    ),
    "outcome denied": (lambda _: {"outcome": "denied"}, lambda _, i: i["outcome"] == "denied"),
    "outcome ok": (lambda _: {"outcome": "ok"}, lambda _, i: i["outcome"] == "ok"),
    "from": (
        lambda _: {"from": iso(EPOCH + DAY)},
        lambda _, i: datetime.fromisoformat(i["occurred_at"]) >= EPOCH + DAY,
    ),
    "to": (
        lambda _: {"to": iso(EPOCH + DAY)},
        lambda _, i: datetime.fromisoformat(i["occurred_at"]) < EPOCH + DAY,
    ),
    "free text": (lambda _: {"q": "zebra"}, lambda _, i: "Zebra" in json.dumps(i["details"])),
    "free text, all words": (
        lambda _: {"q": "phase design"},
        lambda _, i: i["details"].get("title") == AWKWARD,
    ),
    "combined": (
        lambda f: {
            "action": "stage.",
            "project_id": str(f.p1),
            "from": iso(EPOCH + DAY),
            "to": iso(EPOCH + 2 * DAY),
            "actor": "pat",
        },
        lambda f, i: (
            i["action"].startswith("stage.")
            and i["project_id"] == str(f.p1)
            and EPOCH + DAY <= datetime.fromisoformat(i["occurred_at"]) < EPOCH + 2 * DAY
            and i["actor"] == "pat"
        ),
    ),
    "combined with text and outcome": (
        lambda f: {"q": "not_a_member", "outcome": "denied", "target": str(f.p2)},
        lambda f, i: i["outcome"] == "denied" and i["target_id"] == str(f.p2),
    ),
}


def test_each_filter_alone_and_combined_returns_exactly_the_matching_events(
    api: Api, feed: Feed
) -> None:
    everything, _ = listing(api, dev("olga", feed.org), limit=200)
    for name, (params, matches) in FILTERS.items():
        expected = [item for item in everything if matches(feed, item)]
        assert expected, f"{name}: the scene must hold matching events"
        assert len(expected) < len(everything), f"{name}: the filter must exclude something"
        got, _ = listing(api, dev("olga", feed.org), limit=2, **params(feed))
        assert got == expected, name


def test_action_filters_are_exact_unless_they_end_in_a_dot_or_a_star(api: Api, feed: Feed) -> None:
    headers = dev("olga", feed.org)
    for action in ("stage", "stage.create", "stage.signoff", "security"):
        assert listing(api, headers, action=action)[0] == [], action
    # `_` is a LIKE wildcard: a prefix must match it literally.
    assert listing(api, headers, action="stage_*")[0] == []
    assert listing(api, headers, action="stage.signoff_*")[0]
    everything, _ = listing(api, headers, limit=200)
    assert listing(api, headers, action="*", limit=200)[0] == everything


def test_free_text_searches_details_and_never_another_org(api: Api, feed: Feed) -> None:
    headers = dev("olga", feed.org)
    assert listing(api, headers, q='"zebra secret"')[0] == []
    assert listing(api, headers, q="secret")[0] == []
    found, _ = listing(api, dev("gus", feed.other), q='"zebra secret"')
    assert [item["org_id"] for item in found] == [str(feed.other)]
    assert listing(api, headers, q="zebra -crossing")[0] == []
    # Text that yields no search terms at all matches nothing (and is no error).
    assert listing(api, headers, q="!!!")[0] == []


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"from": "2030-01-07T09:00:00"}, None),
        ({"to": "2030-01-07T09:00:00"}, None),
        ({"from": "yesterday"}, None),
        ({"from": iso(EPOCH + DAY), "to": iso(EPOCH)}, "`from` is after `to`"),
        ({"limit": "0"}, None),
        ({"limit": "201"}, None),
        ({"outcome": "maybe"}, None),
        ({"project_id": "not-a-uuid"}, None),
        ({"action": "stage.%"}, None),
        ({"q": "x" * 201}, None),
        ({"cursor": "not a cursor"}, "the cursor is malformed"),
        ({"cursor": encode_cursor(0)}, "the cursor is malformed"),
        ({"cursor": encode_cursor(2**63)}, "the cursor is malformed"),
        ({"cursor": "MDEy"}, "the cursor is malformed"),  # "012": not one we issue
        ({"cursor": "MTI="}, "the cursor is malformed"),  # padded
        ({"min_position": "-1"}, None),
    ],
)
def test_bad_input_is_a_422_and_records_nothing(
    api: Api, params: dict[str, str], detail: str | None
) -> None:
    org = api.new_org()
    start = api.max_position()
    for headers in (dev("olga", org), dev("mia", org, Role.MEMBER)):
        response = api.client.get("/api/audit/list", params=params, headers=headers)
        body = assert_problem(response, 422, "validation")
        if detail is not None:
            assert body["detail"] == detail
    assert api.max_position() == start


def test_an_empty_range_is_no_error(api: Api, feed: Feed) -> None:
    at = iso(EPOCH + DAY)
    assert listing(api, dev("olga", feed.org), **{"from": at, "to": at})[0] == []


def test_walking_the_cursor_visits_every_event_once_in_order(api: Api, feed: Feed) -> None:
    headers = dev("olga", feed.org)
    everything, _ = listing(api, headers, limit=200)
    for limit in (1, 2, 3, 7, len(everything), len(everything) + 1):
        walked, _ = listing(api, headers, limit=limit)
        assert walked == everything, limit
    # Events recorded mid-walk appear on no later page: pages only move back in time.
    first = api.client.get("/api/audit/list", params={"limit": 3}, headers=headers).json()
    api.create_stage(feed.p1, by="olga", org=feed.org, title="Late")
    api.catch_up(AuditProjection(), TelemetryProjection())
    rest, _ = listing(api, headers, limit=3, cursor=first["next_cursor"])
    assert positions(first["items"]) + positions(rest) == positions(everything)


# Who may read it -------------------------------------------------------------------------


def make_auditor(api: Api, org: UUID, user: str) -> None:
    """Name `user` an org auditor (as the org's owner olga)."""
    response = api.client.post(
        "/api/org/auditors", json={"user_id": user}, headers=dev("olga", org)
    )
    assert response.status_code == 200, response.text


def test_an_owner_member_of_every_project_an_auditor_and_the_service_read_the_whole_org(
    api: Api, feed: Feed
) -> None:
    # Changed by issue 7 ("who sees a project's history"): an org admin used to read every
    # project here; now only the projects it audits as a member (see the next test).
    make_auditor(api, feed.org, "ada")
    api.catch_up(AuditProjection())
    expected, _ = listing(api, dev("olga", feed.org), limit=200)
    for headers in (dev("ada", feed.org, Role.GUEST), service(feed.org)):
        seen = listing(api, headers, limit=200)[0]
        # The others' own reads since olga's are newer rows: compare what olga saw.
        assert [item for item in seen if item["position"] <= expected[0]["position"]] == expected


def test_an_admin_outside_every_project_reads_only_the_org_level_rows(api: Api, feed: Feed) -> None:
    everything, _ = listing(api, dev("olga", feed.org), limit=200)
    seen, _ = listing(api, dev("adam", feed.org, Role.ADMIN), limit=200)
    assert seen
    assert all(item["project_id"] is None for item in seen)
    assert [i for i in everything if i["project_id"] is None] == [
        i for i in seen if i["position"] <= everything[0]["position"]
    ]
    exported = api.client.get(
        "/api/audit/export", params=_range_ndjson(), headers=dev("adam", feed.org, Role.ADMIN)
    )
    assert exported.status_code == 200, exported.text
    rows = [json.loads(line) for line in exported.text.splitlines()]
    assert rows
    assert {row["project_id"] for row in rows} == {None}


@pytest.mark.parametrize("role", [Role.PM, Role.LEAD, Role.MEMBER, Role.GUEST], ids=str)
def test_without_view_audit_the_whole_org_is_refused_and_recorded(
    api: Api, feed: Feed, role: Role
) -> None:
    for path, extra in (("/api/audit/list", {}), ("/api/audit/export", _range_csv())):
        start = api.max_position()
        response = api.client.get(path, params=extra, headers=dev("pat", feed.org, role))
        body = assert_problem(response, 403, "forbidden")
        assert "view_audit" in body["detail"]
        (denial,) = api.denials_after(start)
        assert (denial.actor, denial.action, denial.reason) == (
            "pat",
            "audit.read",
            "missing_permission:view_audit",
        )
        assert (denial.org_id, denial.target_kind, denial.target_id) == (
            feed.org,
            "org",
            str(feed.org),
        )
        assert len(api.rows_after(start)) == 1  # the denial, and no read recorded


def test_project_auditors_read_only_their_projects_slice(api: Api, feed: Feed) -> None:
    pat = dev("pat", feed.org, Role.MEMBER)  # pm of p1 only; no org-wide grant
    everything, _ = listing(api, dev("olga", feed.org), limit=200)
    slice_, _ = listing(api, pat, project_id=str(feed.p1))
    assert slice_
    assert slice_ == [item for item in everything if item["project_id"] == str(feed.p1)]
    narrowed, _ = listing(api, pat, project_id=str(feed.p1), actor="pat")
    assert narrowed
    assert all(item["actor"] == "pat" for item in narrowed)
    exported = api.client.get(
        "/api/audit/export", params={**_range_ndjson(), "project_id": str(feed.p1)}, headers=pat
    )
    assert exported.status_code == 200, exported.text
    assert {json.loads(line)["project_id"] for line in exported.text.splitlines()} == {str(feed.p1)}


@pytest.mark.parametrize(
    ("user", "project", "status", "reason"),
    [
        ("mia", "p1", 403, "missing_permission:audit"),  # member of p1: no `audit`
        ("pat", "p2", 404, "not_a_member"),  # pm elsewhere
        ("nina", "p1", 404, "not_a_member"),
        ("pat", "other_project", 404, "not_found"),  # another org's project
        ("pat", "missing", 404, "not_found"),
    ],
)
def test_a_project_slice_is_refused_like_any_project_read(
    api: Api, feed: Feed, user: str, project: str, status: int, reason: str
) -> None:
    project_id = uuid4() if project == "missing" else getattr(feed, project)
    for path, extra in (("/api/audit/list", {}), ("/api/audit/export", _range_csv())):
        start = api.max_position()
        response = api.client.get(
            path,
            params={**extra, "project_id": str(project_id)},
            headers=dev(user, feed.org, Role.MEMBER),
        )
        assert_problem(response, status, "not-found" if status == 404 else "forbidden")
        (denial,) = api.denials_after(start)
        assert (denial.actor, denial.action, denial.reason) == (user, "audit.read", reason)
        assert (denial.target_kind, denial.target_id) == ("project", str(project_id))
        assert len(api.rows_after(start)) == 1


def test_a_missing_and_a_foreign_project_get_the_same_answer(api: Api, feed: Feed) -> None:
    def answer(project: UUID) -> dict[str, Any]:
        response = api.client.get(
            "/api/audit/list",
            params={"project_id": str(project)},
            headers=dev("pat", feed.org, Role.MEMBER),
        )
        body = assert_problem(response, 404)
        return {k: v for k, v in body.items() if k not in {"request_id", "instance"}}

    assert answer(feed.other_project) == answer(uuid4())


def test_no_filter_ever_reaches_another_orgs_rows(api: Api, feed: Feed) -> None:
    # An org auditor: the reader who may filter on any project id and sees the whole org.
    make_auditor(api, feed.org, "olga")
    headers = dev("olga", feed.org)
    foreign = [
        {},
        {"project_id": str(feed.other_project)},
        {"actor": "gus"},
        {"target": str(feed.other_project)},
        {"q": "secret"},
        {"action": "*"},
    ]
    for params in foreign[1:-1]:
        assert listing(api, headers, **params)[0] == [], params
    for params in foreign:
        items, _ = listing(api, headers, limit=200, **params)
        assert {item["org_id"] for item in items} <= {str(feed.org)}
        response = api.client.get(
            "/api/audit/export", params={**_range_ndjson(), **params}, headers=headers
        )
        assert response.status_code == 200, response.text
        exported = [json.loads(line) for line in response.text.splitlines()]
        assert {row["org_id"] for row in exported} <= {str(feed.org)}
        if params in (foreign[0], foreign[-1]):
            # Unfiltered, the caller's own org has rows: an empty answer must not pass.
            assert items, params
            assert exported, params


# The read is itself on the record ----------------------------------------------------------


def test_every_read_is_recorded_and_appears_in_the_feed(api: Api, feed: Feed) -> None:
    pat = dev("pat", feed.org, Role.MEMBER)
    listed = api.client.get(
        "/api/audit/list",
        params={"project_id": str(feed.p1), "action": "stage.", "limit": 2},
        headers=pat,
    )
    assert listed.status_code == 200, listed.text
    listed_at = int(listed.headers["x-event-position"])
    exported = api.client.get(
        "/api/audit/export", params={**_range_csv(), "q": "zebra"}, headers=dev("olga", feed.org)
    )
    assert exported.status_code == 200, exported.text
    exported_at = int(exported.headers["x-event-position"])
    assert exported_at > listed_at > 0
    api.catch_up(AuditProjection(), TelemetryProjection())

    reads, _ = listing(
        api, dev("olga", feed.org), action="audit.read", min_position=str(exported_at)
    )
    by_position = {item["position"]: item for item in reads}
    listed_read, exported_read = by_position[listed_at], by_position[exported_at]
    assert (listed_read["actor"], listed_read["outcome"]) == ("pat", "ok")
    assert listed_read["project_id"] == str(feed.p1)  # stamped with the project it read
    assert listed_read["details"] == {
        "kind": "list",
        "filters": {"project_id": str(feed.p1), "action": "stage."},
        "count": 2,
    }
    assert (exported_read["actor"], exported_read["project_id"]) == ("olga", None)
    assert exported_read["details"]["kind"] == "export:csv"
    assert exported_read["details"]["count"] is None
    assert exported_read["details"]["filters"]["q"] == "zebra"
    assert exported_read["details"]["filters"]["from"] == _range_csv()["from"]
    # The record is itself searchable and pageable like any event.
    assert listing(api, dev("olga", feed.org), action="audit.read", actor="pat")[0] == [listed_read]


def test_an_org_wide_reader_filtering_a_foreign_project_stamps_no_project(
    api: Api, feed: Feed
) -> None:
    # The org-wide reader who may filter on any id is an org auditor (since issue 7).
    make_auditor(api, feed.org, "olga")
    response = api.client.get(
        "/api/audit/list",
        params={"project_id": str(feed.other_project)},
        headers=dev("olga", feed.org),
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"items": [], "next_cursor": None}
    position = int(response.headers["x-event-position"])
    api.catch_up(AuditProjection(), TelemetryProjection())
    (read,) = [i for i in listing(api, dev("olga", feed.org))[0] if i["position"] == position]
    assert (read["org_id"], read["project_id"]) == (str(feed.org), None)
    assert read["details"]["filters"] == {
        "project_id": str(feed.other_project),
        "capability": "auditor",
    }
    foreign, _ = listing(api, dev("gus", feed.other), action="audit.read")
    assert foreign == []


def test_min_position_waits_for_the_feed_and_503s_when_it_cannot(
    build_app: Callable[..., Any], api: Api, feed: Feed
) -> None:
    from fastapi.testclient import TestClient

    head = api.max_position()
    ok = api.client.get(
        "/api/audit/list", params={"min_position": str(head)}, headers=dev("olga", feed.org)
    )
    assert ok.status_code == 200, ok.text
    # A position recorded but not applied (no runner here): the wait runs out, 503. (A
    # position beyond the log, which this test used before, is now a 422 at once: issue 7.)
    api.new_org()
    lagging = api.max_position()
    impatient = build_app(read_wait_seconds=0.05)
    with TestClient(impatient, raise_server_exceptions=False) as client:
        for path, extra in (("/api/audit/list", {}), ("/api/audit/export", _range_csv())):
            response = client.get(
                path, params={**extra, "min_position": str(lagging)}, headers=dev("olga", feed.org)
            )
            assert_problem(response, 503, "read-model-lagging")
            beyond = client.get(
                path,
                params={**extra, "min_position": str(lagging + 1000)},
                headers=dev("olga", feed.org),
            )
            assert_problem(beyond, 422, "position-beyond-log")


# Exports ---------------------------------------------------------------------------------


def _range(fmt: str) -> dict[str, str]:
    return {"format": fmt, "from": iso(EPOCH - DAY), "to": iso(EPOCH + 30 * DAY)}


def _range_csv() -> dict[str, str]:
    return _range("csv")


def _range_ndjson() -> dict[str, str]:
    return _range("ndjson")


def parse_csv(text: str) -> list[Item]:
    """CSV rows back into feed items (details parsed from their JSON cell)."""
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    items: list[Item] = []
    for row in rows:
        item: Item = dict(row)
        item["position"] = int(row["position"])
        item["aggregate_version"] = int(row["aggregate_version"])
        item["project_id"] = row["project_id"] or None
        item["details"] = json.loads(row["details"])
        items.append(item)
    return items


def _same_instant(a: str, b: str) -> bool:
    return datetime.fromisoformat(a) == datetime.fromisoformat(b)


def test_csv_and_ndjson_exports_round_trip_to_the_feed_oldest_first(api: Api, feed: Feed) -> None:
    headers = dev("olga", feed.org)
    expected = list(reversed(listing(api, headers, limit=200)[0]))

    as_csv = api.client.get("/api/audit/export", params=_range_csv(), headers=headers)
    assert as_csv.status_code == 200, as_csv.text
    assert as_csv.headers["content-type"] == "text/csv; charset=utf-8"
    assert as_csv.headers["content-disposition"] == (
        'attachment; filename="audit-20300106T090000Z-20300206T090000Z.csv"'
    )
    header = as_csv.text.split("\r\n", 1)[0].split(",")
    assert header == [
        "position",
        "occurred_at",
        "action",
        "outcome",
        "actor",
        "org_id",
        "project_id",
        "target_kind",
        "target_id",
        "aggregate_id",
        "aggregate_version",
        "correlation_id",
        "details",
    ]
    rows = parse_csv(as_csv.text)
    assert len(rows) == len(expected)
    for row, item in zip(rows, expected, strict=True):
        assert _same_instant(row.pop("occurred_at"), item["occurred_at"])
        assert row == {k: v for k, v in item.items() if k != "occurred_at"}
    # Details are compact JSON in one properly quoted cell, awkward title included.
    assert any(row["details"].get("title") == AWKWARD for row in rows)
    assert '"{""' in as_csv.text

    as_ndjson = api.client.get("/api/audit/export", params=_range_ndjson(), headers=headers)
    assert as_ndjson.status_code == 200, as_ndjson.text
    assert as_ndjson.headers["content-type"] == "application/x-ndjson"
    assert as_ndjson.headers["content-disposition"].startswith("attachment; filename=")
    assert as_ndjson.text.endswith("\n")
    lines = [json.loads(line) for line in as_ndjson.text.splitlines()]
    assert len(lines) == len(expected)
    for line, item in zip(lines, expected, strict=True):
        assert _same_instant(line.pop("occurred_at"), item["occurred_at"])
        assert line == {k: v for k, v in item.items() if k != "occurred_at"}


def test_exports_apply_the_filters_and_the_range(api: Api, feed: Feed) -> None:
    headers = dev("olga", feed.org)
    for name, (params, matches) in FILTERS.items():
        merged = {**_range_ndjson(), **params(feed)}
        everything = listing(api, headers, limit=200)[0]
        expected = [
            item["position"]
            for item in reversed(everything)
            if matches(feed, item)
            and datetime.fromisoformat(merged["from"])
            <= datetime.fromisoformat(item["occurred_at"])
            < datetime.fromisoformat(merged["to"])
        ]
        response = api.client.get("/api/audit/export", params=merged, headers=headers)
        assert response.status_code == 200, (name, response.text)
        got = [json.loads(line)["position"] for line in response.text.splitlines()]
        assert got == expected, name


@pytest.mark.parametrize(
    ("params", "status_detail"),
    [
        ({"format": "csv"}, "an export needs both `from` and `to`"),
        ({"format": "csv", "from": iso(EPOCH)}, "an export needs both `from` and `to`"),
        ({"format": "csv", "to": iso(EPOCH)}, "an export needs both `from` and `to`"),
        (
            {"format": "csv", "from": iso(EPOCH), "to": iso(EPOCH + timedelta(days=367))},
            "an export covers at most 366 days; split it",
        ),
        ({"format": "csv", "from": iso(EPOCH + DAY), "to": iso(EPOCH)}, "`from` is after `to`"),
        ({"format": "xml", "from": iso(EPOCH), "to": iso(EPOCH + DAY)}, None),
        ({"from": iso(EPOCH), "to": iso(EPOCH + DAY)}, None),
        ({"format": "csv", "from": "2030-01-07T00:00:00", "to": iso(EPOCH)}, None),
    ],
)
def test_an_export_needs_a_bounded_aware_range(
    api: Api, params: dict[str, str], status_detail: str | None
) -> None:
    org = api.new_org()
    start = api.max_position()
    response = api.client.get("/api/audit/export", params=params, headers=dev("olga", org))
    body = assert_problem(response, 422, "validation")
    if status_detail is not None:
        assert body["detail"] == status_detail
    assert api.max_position() == start


def test_a_year_long_export_is_allowed(api: Api, feed: Feed) -> None:
    params = {"format": "csv", "from": iso(EPOCH), "to": iso(EPOCH + timedelta(days=366))}
    response = api.client.get("/api/audit/export", params=params, headers=dev("olga", feed.org))
    assert response.status_code == 200, response.text


def _fill(api: Api, org: UUID, project: UUID, events: int) -> None:
    """Append `events` stamped events fast (one memory edited many times per save)."""
    written = 0
    while written < events:
        stamp = Stamp(org, "filler", "fill", api.clock.now(), project_id=project)
        memory = Memory.create(memory_id=uuid4(), title="m", body="", tags=[], stamp=stamp)
        for n in range(min(499, events - written - 1)):
            memory.update(title=f"t{n}", body="", tags=[], stamp=stamp)
        written += len(memory.pending_events)
        api.runtime.app.save(memory)


def test_a_large_export_streams_every_row_in_order(api: Api) -> None:
    org = api.new_org()
    project = api.create_project("olga", org)
    _fill(api, org, project, 3500)
    api.catch_up(AuditProjection(), TelemetryProjection())
    expected = [row.notification_id for row in api.rows_after(0) if row.org_id == org]
    assert len(expected) > 3500
    with api.client.stream(
        "GET", "/api/audit/export", params=_range_ndjson(), headers=dev("olga", org)
    ) as response:
        assert response.status_code == 200
        chunks = list(response.iter_bytes())
    body = b"".join(chunks)
    got = [json.loads(line)["position"] for line in body.splitlines()]
    assert got == expected
    assert len(chunks) > 1  # the body went out in pieces, not one buffer

    as_csv = api.client.get("/api/audit/export", params=_range_csv(), headers=dev("olga", org))
    assert [row["position"] for row in parse_csv(as_csv.text)] == expected


def test_export_chunks_join_seamlessly_and_hold_the_starting_snapshot(api: Api) -> None:
    """Keyset chunks of any size give the same rows; rows projected mid-export stay out."""
    org = api.new_org()
    project = api.create_project("olga", org)
    _fill(api, org, project, 40)
    api.catch_up(AuditProjection(), TelemetryProjection())
    feed = PostgresAuditFeed(api.runtime.read_db)
    # The whole org's scope reads one keyset walk; a member's merges one walk per project.
    for scope in (AuditScope.whole_org(), AuditScope.member("olga", org_level=True)):
        for query in (AuditQuery(), AuditQuery(action="memory.", since=EPOCH, until=EPOCH + DAY)):
            whole = [row.position for row in feed.export(org, query, scope)]
            assert len(whole) >= 40
            for chunk in (1, 3, 7, 40, 1000):
                assert [r.position for r in feed.export(org, query, scope, chunk=chunk)] == whole
    everything = [row.position for row in feed.export(org, AuditQuery(), AuditScope.whole_org())]
    export = iter(feed.export(org, AuditQuery(), AuditScope.whole_org(), chunk=5))
    started = [next(export).position for _ in range(7)]
    _fill(api, org, project, 12)
    api.catch_up(AuditProjection(), TelemetryProjection())
    assert started + [row.position for row in export] == everything
