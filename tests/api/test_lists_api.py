"""The list endpoints: the caller's projects, and a project's members, stages, documents, RAID
log and memories: filters, sort orders, cursor walks, bad cursors, isolation, and
read-your-writes against projections running in the background."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import orjson
import pytest

from adapters.postgres.projection_host import ProjectionHost
from domain.roles import MATRIX, Permission, Role
from projections.lists import ProjectListsProjection
from tests.api.conftest import Api, assert_problem, dev, service, without_request
from tests.support.uploads import upload

LIMITS = (1, 3, 7)


def get(api: Api, path: str, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    """A 200 list response."""
    response = api.client.get(path, params=params, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    # The members page also names the org's auditors (who read the project's history).
    extra = {"org_auditors"} if path.endswith("/members") else set()
    assert set(body) == {"items", "next_cursor", *extra}
    return body


def items(api: Api, path: str, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    """The whole list in one page (it must fit)."""
    body = get(api, path, headers, limit=200, **params)
    assert body["next_cursor"] is None
    found: list[dict[str, Any]] = body["items"]
    return found


def walk(
    api: Api,
    path: str,
    headers: dict[str, str],
    limit: int,
    *,
    start: str | None = None,
    **params: Any,
) -> list[dict[str, Any]]:
    """Every item, page by page, following `next_cursor` to the end (from `start` if given)."""
    found: list[dict[str, Any]] = []
    cursor: str | None = start
    for _ in range(1000):
        page = get(
            api, path, headers, limit=limit, **params, **({"cursor": cursor} if cursor else {})
        )
        found += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            assert len(page["items"]) <= limit
            return found
        assert len(page["items"]) == limit
    raise AssertionError("the walk did not end")


def ids(rows: list[dict[str, Any]], key: str = "id") -> list[Any]:
    return [row[key] for row in rows]


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def forge(payload: object) -> str:
    """A cursor with made-up contents."""
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode().rstrip("=")


def created(api: Api, path: str, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    response = api.client.post(path, json=body, headers=headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


_SENT: dict[str, bytes] = {}


def register(api: Api, project: UUID, h: dict[str, str], name: str, tags: list[str]) -> str:
    """Upload a small text document named `name` (bytes unique to each call: no duplicate)."""
    data = f"the document {name} #{len(_SENT)} {uuid4()}".encode()
    response = upload(
        api.client, project, h, filename=name, data=data, content_type="text/plain", tags=tags
    )
    assert response.status_code == 201, response.text
    artifact_id = str(response.json()["id"])
    _SENT[artifact_id] = data
    return artifact_id


# The caller's projects -------------------------------------------------------------------


def test_my_projects_are_the_callers_memberships_in_the_callers_org(api: Api) -> None:
    home, away = api.new_org("Home"), api.new_org("Away")
    mine = [api.create_project("olive", home, f"OL-{n}") for n in range(2)]
    shared = api.create_project("bob", home, "BOB-1")
    api.add_member(shared, by="bob", org=home, user="olive", role=Role.LEAD)
    api.add_member(shared, by="bob", org=home, user="mia", role=Role.GUEST)
    others = api.create_project("bob", home, "BOB-2")
    # The same user id in another org is another person: nothing of it shows at home.
    elsewhere = api.create_project("olive", away, "OL-AWAY")
    api.client.post(f"/api/projects/{mine[1]}/archive", headers=dev("olive", home))
    api.catch_up(ProjectListsProjection())

    olive = dev("olive", home)
    listed = {row["id"]: row for row in items(api, "/api/projects", olive)}
    assert set(listed) == {str(p) for p in [*mine, shared]}
    assert listed[str(shared)]["role"] == "lead"
    assert listed[str(shared)]["member_count"] == 3
    assert listed[str(mine[0])] | {"created_at": None, "updated_at": None} == {
        "id": str(mine[0]),
        "org_id": str(home),
        "code": "OL-0",
        "name": "Project",
        "archived": False,
        "member_count": 1,
        "role": "owner",
        "created_at": None,
        "updated_at": None,
    }
    assert ids(items(api, "/api/projects", olive, archived="true")) == [str(mine[1])]
    assert set(ids(items(api, "/api/projects", olive, archived="false"))) == {
        str(mine[0]),
        str(shared),
    }
    assert ids(items(api, "/api/projects", dev("olive", away))) == [str(elsewhere)]
    assert ids(items(api, "/api/projects", dev("mia", home))) == [str(shared)]
    assert items(api, "/api/projects", dev("nobody", home)) == []
    # The internal service acts for its whole tenant.
    every = items(api, "/api/projects", service(home))
    assert set(ids(every)) == {str(p) for p in [*mine, shared, others]}
    assert {row["role"] for row in every} == {None}


def test_my_projects_sort_by_name_newest_and_oldest(api: Api) -> None:
    org = api.new_org()
    h = dev("olive", org)
    names = ["beta", "Alpha", "gamma", "alpha", "Beta", "delta", "alpha"]
    made: list[str] = []
    for n, name in enumerate(names):
        if n % 3 == 0:
            api.clock.advance(timedelta(minutes=1))  # some share a creation time, some do not
        response = api.client.post(
            "/api/projects", json={"code": f"S-{n}", "name": name}, headers=h
        )
        assert response.status_code == 201, response.text
        made.append(response.json()["id"])
    api.catch_up(ProjectListsProjection())
    full = {row["id"]: row for row in items(api, "/api/projects", h)}
    assert set(full) == set(made)
    by_name = sorted(full.values(), key=lambda r: (r["name"].lower(), UUID(r["id"])))
    newest = sorted(full.values(), key=lambda r: (at(r["created_at"]), UUID(r["id"])), reverse=True)
    for sort, expected in [("name", by_name), ("newest", newest), ("oldest", newest[::-1])]:
        assert ids(items(api, "/api/projects", h, sort=sort)) == ids(expected), sort
        for limit in LIMITS:
            assert ids(walk(api, "/api/projects", h, limit, sort=sort)) == ids(expected), sort


def test_a_name_sort_over_the_longest_names_pages_to_the_end(api: Api) -> None:
    # The longest cursor a list issues: a name at the domain's cap, of 4-byte characters.
    org = api.new_org()
    h = dev("olive", org)
    made = set()
    for n, char in enumerate(["\U0001f600", "\U0001f601", "\U0001f602"]):
        body = {"code": f"L-{n}", "name": char * 200}
        made.add(created(api, "/api/projects", body, h)["id"])
    project = UUID(next(iter(made)))
    for n in range(3):
        register(api, project, h, "\U0001f4c4" * 199 + str(n), [])
    api.catch_up(ProjectListsProjection())
    assert set(ids(walk(api, "/api/projects", h, 1, sort="name"))) == made
    documents = walk(api, f"/api/projects/{project}/documents", h, 1, sort="name")
    assert len(documents) == 3


# Members -------------------------------------------------------------------------------


def test_members_are_paged_by_user_id_with_their_permissions(api: Api) -> None:
    org = api.new_org()
    project = api.create_project("olive", org)
    users = ["u10", "u02", "Zed", "alice", "u01", "bob.smith@example.com", "Ölaf"]
    for n, user in enumerate(users):
        api.add_member(
            project, by="olive", org=org, user=user, role=list(Role)[n % 6], signer=n % 2 == 0
        )
    api.catch_up(ProjectListsProjection())
    path = f"/api/projects/{project}/members"
    guest = dev("u10", org, Role.MEMBER)  # u10 is an owner by index 0; any member may read
    full = items(api, path, guest)
    assert ids(full, "user_id") == sorted([*users, "olive"])  # bytewise (code point) order
    for member in full:
        expected = set(MATRIX[Role(member["role"])])
        if member["signer"]:
            expected.add(Permission.SIGN)
        assert set(member["permissions"]) == expected
        assert at(member["added_at"]) <= at(member["updated_at"])
    for limit in LIMITS:
        assert walk(api, path, guest, limit) == full


# Stages --------------------------------------------------------------------------------


def test_stages_show_signoff_progress_in_order(api: Api) -> None:
    org = api.new_org()
    project = api.create_project("olive", org)
    api.add_member(project, by="olive", org=org, user="lena", role=Role.LEAD)
    h = dev("olive", org)
    stages = {
        title: created(api, f"/api/projects/{project}/stages", {"title": title, "order": order}, h)[
            "id"
        ]
        for title, order in [("Build", 3), ("Discovery", 1), ("Design", 2), ("Kickoff", 1)]
    }
    api.request_signoff(project, UUID(stages["Design"]), by="olive", org=org, signers=["lena"])
    api.invite(project, UUID(stages["Design"]), by="olive", org=org)
    api.catch_up(ProjectListsProjection())
    path = f"/api/projects/{project}/stages"
    full = items(api, path, h)
    assert ids(full, "title") == ["Discovery", "Kickoff", "Design", "Build"]
    design = full[2]
    assert design | {"created_at": None, "updated_at": None, "signoff_id": None} == {
        "id": stages["Design"],
        "project_id": str(project),
        "title": "Design",
        "order": 2,
        "state": "in_review",
        "round": 1,
        "signoff_id": None,
        "signoff_status": "open",
        "signatures_count": 0,
        "required_count": 2,
        "external_pending_count": 1,
        "rejection_reason": None,
        "created_at": None,
        "updated_at": None,
    }
    assert design["signoff_id"] is not None
    assert {row["signoff_status"] for row in full if row["title"] != "Design"} == {None}

    response = api.client.post(
        f"/api/projects/{project}/stages/{stages['Design']}/signoff/sign",
        json={},
        headers=dev("lena", org),
    )
    assert response.status_code == 200, response.text
    api.catch_up(ProjectListsProjection())
    (design,) = items(api, path, h, state="in_review")
    assert (design["signatures_count"], design["signoff_status"]) == (1, "open")
    assert ids(items(api, path, h, state="draft"), "title") == ["Discovery", "Kickoff", "Build"]
    assert items(api, path, h, state="signed_off") == []
    for limit in LIMITS:
        assert walk(api, path, h, limit) == [*full[:2], design, *full[3:]]
    assert_problem(api.client.get(path, params={"state": "done"}, headers=h), 422)


# Documents -----------------------------------------------------------------------------


def test_documents_search_filter_and_sort(api: Api) -> None:
    org = api.new_org()
    project = api.create_project("olive", org)
    h = dev("olive", org)
    docs: dict[str, str] = {}
    for name, tags in [
        ("Project Spec.pdf", ["spec", "client"]),
        ("design-SPEC v2.docx", ["spec"]),
        ("Budget 2031.xlsx", ["finance", "client"]),
        ("100%_done.txt", []),
        ("1000 done.txt", ["misc"]),
        ("Ärger.md", ["misc"]),
    ]:
        api.clock.advance(timedelta(seconds=10))
        docs[name] = register(api, project, h, name, tags)
    gone = register(api, project, h, "Old spec.pdf", ["spec"])
    response = api.client.delete(f"/api/projects/{project}/artifacts/{gone}", headers=h)
    assert response.status_code == 200, response.text
    response = api.client.patch(
        f"/api/projects/{project}/artifacts/{docs['Budget 2031.xlsx']}",
        json={"name": "Budget FY31.xlsx", "tags": ["Finance"]},
        headers=h,
    )
    assert response.status_code == 200, response.text
    api.catch_up(ProjectListsProjection())
    path = f"/api/projects/{project}/documents"

    def names(**params: Any) -> list[str]:
        return ids(items(api, path, h, **params), "name")

    newest = ["Ärger.md", "1000 done.txt", "100%_done.txt", "Budget FY31.xlsx"]
    newest += ["design-SPEC v2.docx", "Project Spec.pdf"]
    assert names() == newest  # deleted documents are not listed
    assert names(sort="oldest") == newest[::-1]
    assert names(sort="name") == sorted(newest, key=str.lower)
    # Search: case-insensitive substring; LIKE wildcards in the text are plain characters.
    assert names(q="spec") == ["design-SPEC v2.docx", "Project Spec.pdf"]
    assert names(q="  SPEC ") == names(q="spec")
    assert names(q="%") == ["100%_done.txt"]
    assert names(q="0_") == []
    assert names(q="_") == ["100%_done.txt"]
    assert names(q="ärger") == ["Ärger.md"]
    assert names(q="budget 2031") == []  # renamed: the list follows the new name
    assert names(q="nothing like it") == []
    # Tags: every one asked for must be carried (spelled as the domain normalises them).
    assert names(tag="spec") == ["design-SPEC v2.docx", "Project Spec.pdf"]
    assert names(tag=["spec", "Client"]) == ["Project Spec.pdf"]
    assert names(tag="finance") == ["Budget FY31.xlsx"]
    assert names(tag="client") == ["Project Spec.pdf"]  # retagged away
    assert names(tag="spec", q="v2", sort="name") == ["design-SPEC v2.docx"]
    doc = items(api, path, h, q="Project")[0]
    assert doc | {"created_at": None, "updated_at": None} == {
        "id": docs["Project Spec.pdf"],
        "project_id": str(project),
        "name": "Project Spec.pdf",
        "mime": "text/plain",
        "size": len(_SENT[docs["Project Spec.pdf"]]),
        "sha256": hashlib.sha256(_SENT[docs["Project Spec.pdf"]]).hexdigest(),
        "tags": ["client", "spec"],
        "created_at": None,
        "updated_at": None,
        "content_version": 1,
        "claimed_mime": "text/plain",
        "mime_mismatch": False,
        "source": "upload",
        "source_url": None,
        "ingestion": "pending",
        "method": None,
        "page_count": None,
        "reason": None,
        "published": False,
    }
    # A NUL could not be stored by the read models: the domain refuses it outright (an
    # upload's file name is sanitised instead: test_artifact_upload.py).
    refused = api.client.patch(
        f"/api/projects/{project}/artifacts/{docs['Project Spec.pdf']}",
        json={"name": "odd\x00name"},
        headers=h,
    )
    assert_problem(refused, 422, "invalid-value")
    # A search for one is answered (nothing matches), never an error.
    assert items(api, path, h, q="d\x00n") == []
    assert_problem(api.client.get(path, params={"tag": "no{braces}"}, headers=h), 422)
    assert_problem(api.client.get(path, params={"sort": "size"}, headers=h), 422)
    assert_problem(api.client.get(path, params={"q": "x" * 201}, headers=h), 422)


# RAID log and memories -----------------------------------------------------------------


def test_raid_items_filter_by_kind_and_status_and_sort_by_change_or_due_date(api: Api) -> None:
    org = api.new_org()
    project = api.create_project("olive", org)
    h = dev("olive", org)
    path = f"/api/projects/{project}/raid"
    specs: list[dict[str, Any]] = [
        {"kind": "risk", "title": "Vendor slips", "severity": "high", "due_date": "2031-05-01"},
        {"kind": "action", "title": "Call vendor", "owner": "pete", "due_date": "2031-04-01"},
        {"kind": "issue", "title": "Build broken"},
        {"kind": "decision", "title": "Use Postgres", "decided_by": "olive"},
        {"kind": "action", "title": "Write plan", "due_date": "2031-04-01"},
    ]
    made = {}
    for spec in specs:
        api.clock.advance(timedelta(seconds=5))
        made[spec["title"]] = created(api, path, spec, h)["id"]
    api.clock.advance(timedelta(seconds=5))
    response = api.client.post(
        f"{path}/{made['Call vendor']}/close", json={"resolution": "called"}, headers=h
    )
    assert response.status_code == 200, response.text
    api.clock.advance(timedelta(seconds=5))
    response = api.client.patch(
        f"{path}/{made['Build broken']}", json={"status": "in_progress"}, headers=h
    )
    assert response.status_code == 200, response.text
    api.catch_up(ProjectListsProjection())

    def titles(**params: Any) -> list[str]:
        return ids(items(api, path, h, **params), "title")

    assert titles() == [
        "Build broken",
        "Call vendor",
        "Write plan",
        "Use Postgres",
        "Vendor slips",
    ]
    assert titles(kind="action") == ["Call vendor", "Write plan"]
    assert titles(status="open") == ["Write plan", "Use Postgres", "Vendor slips"]
    assert titles(kind="action", status="open") == ["Write plan"]
    assert titles(status="closed") == ["Call vendor"]
    due = items(api, path, h, sort="due")
    dated = ["Call vendor", "Write plan"]
    dated.sort(key=lambda t: UUID(made[t]))  # the same due date: id breaks the tie
    assert ids(due, "title")[:3] == [*dated, "Vendor slips"]
    assert set(ids(due, "title")[3:]) == {"Build broken", "Use Postgres"}  # undated last
    dates = [row["due_date"] for row in due]
    assert dates == ["2031-04-01", "2031-04-01", "2031-05-01", None, None]
    for limit in LIMITS:
        assert walk(api, path, h, limit, sort="due") == due
    vendor = next(row for row in due if row["title"] == "Vendor slips")
    assert (vendor["kind"], vendor["severity"], vendor["status"], vendor["owner"]) == (
        "risk",
        "high",
        "open",
        None,
    )
    assert_problem(api.client.get(path, params={"kind": "rumour"}, headers=h), 422)
    assert_problem(api.client.get(path, params={"status": "done"}, headers=h), 422)


def test_memories_filter_by_tag_and_state(api: Api) -> None:
    org = api.new_org()
    project = api.create_project("olive", org)
    h = dev("olive", org)
    path = f"/api/projects/{project}/memories"
    made = {}
    for title, tags in [("Fridays", ["Client"]), ("No calls", ["client", "team"]), ("Coffee", [])]:
        api.clock.advance(timedelta(seconds=5))
        made[title] = created(api, path, {"title": title, "body": "b", "tags": tags}, h)["id"]
    response = api.client.post(f"{path}/{made['Coffee']}/close", headers=h)
    assert response.status_code == 200, response.text
    api.catch_up(ProjectListsProjection())

    def titles(**params: Any) -> list[str]:
        return ids(items(api, path, h, **params), "title")

    assert titles() == ["Coffee", "No calls", "Fridays"]
    assert titles(sort="oldest") == ["Fridays", "No calls", "Coffee"]
    assert titles(closed="false") == ["No calls", "Fridays"]
    assert titles(closed="true") == ["Coffee"]
    assert titles(tag="CLIENT") == ["No calls", "Fridays"]
    assert titles(tag=["client", "team"]) == ["No calls"]
    (memory,) = items(api, path, h, tag="team")
    assert (memory["body"], memory["tags"], memory["closed"]) == ("b", ["client", "team"], False)


# Cursors -------------------------------------------------------------------------------


def _bulk_project(api: Api, org: UUID, owner: str, count: int) -> UUID:
    """A project with `count` of everything, many sharing their sort keys."""
    project = api.create_project(owner, org)
    h = dev(owner, org)
    base = f"/api/projects/{project}"
    for n in range(count):
        if n % 4 == 0:
            api.clock.advance(timedelta(seconds=1))  # groups of four share a timestamp
        api.add_member(project, by=owner, org=org, user=f"user-{n % 5}-{n}")
        created(api, f"{base}/stages", {"title": f"S{n}", "order": n % 3}, h)
        register(api, project, h, ["Same name", "same NAME", f"Doc {n}"][n % 3], ["t"])
        raid = {"kind": "risk", "title": f"R{n}", "due_date": [None, "2031-01-01"][n % 2]}
        created(api, f"{base}/raid", raid, h)
        created(api, f"{base}/memories", {"title": f"M{n}", "body": "", "tags": []}, h)
    return project


LISTS = [
    ("members", {}, "user_id"),
    ("stages", {}, "id"),
    ("documents", {"sort": "newest"}, "id"),
    ("documents", {"sort": "oldest"}, "id"),
    ("documents", {"sort": "name"}, "id"),
    ("documents", {"sort": "name", "q": "name", "tag": "t"}, "id"),
    ("raid", {"sort": "updated"}, "id"),
    ("raid", {"sort": "due"}, "id"),
    ("raid", {"sort": "due", "kind": "risk", "status": "open"}, "id"),
    ("memories", {"sort": "newest"}, "id"),
    ("memories", {"sort": "oldest"}, "id"),
]


def test_cursor_walks_return_every_item_once_in_order(api: Api) -> None:
    org = api.new_org()
    project = _bulk_project(api, org, "olive", 13)
    api.catch_up(ProjectListsProjection())
    h = dev("olive", org)
    before: dict[int, list[Any]] = {}
    firsts: dict[int, dict[str, Any]] = {}
    for n, (name, params, key) in enumerate(LISTS):
        label = f"{name} {params}"
        path = f"/api/projects/{project}/{name}"
        full = items(api, path, h, **params)
        assert len(full) == len(set(ids(full, key))) >= 9, label
        for limit in LIMITS:
            assert ids(walk(api, path, h, limit, **params), key) == ids(full, key), label
        before[n] = ids(full, key)
        firsts[n] = get(api, path, h, limit=4, **params)
    # Writes while a client walks: the rest of its walk still holds every earlier row once,
    # in order, whether the new rows sort before or after its cursor.
    _add_one_of_each(api, org, project, "olive")
    api.catch_up(ProjectListsProjection())
    for n, (name, params, key) in enumerate(LISTS):
        label = f"{name} {params}"
        path = f"/api/projects/{project}/{name}"
        rest = walk(api, path, h, 5, start=firsts[n]["next_cursor"], **params)
        walked = ids(firsts[n]["items"] + rest, key)
        now = ids(items(api, path, h, **params), key)
        assert len(now) > len(before[n]), label
        assert len(walked) == len(set(walked)), label
        assert set(before[n]) <= set(walked), label
        assert walked == [i for i in now if i in set(walked)], label


def _add_one_of_each(api: Api, org: UUID, project: UUID, owner: str) -> None:
    """One more row in every list of the project, some sorting first and some last."""
    h = dev(owner, org)
    base = f"/api/projects/{project}"
    api.clock.advance(timedelta(seconds=1))
    for n, user in enumerate(["aaa-first", "zzz-last"]):
        api.add_member(project, by=owner, org=org, user=user)
        created(api, f"{base}/stages", {"title": user, "order": n * 2}, h)
        register(api, project, h, f"{user} same name", ["t"])
        created(api, f"{base}/raid", {"kind": "risk", "title": user, "due_date": "2030-01-01"}, h)
        created(api, f"{base}/memories", {"title": user, "body": "", "tags": []}, h)


BAD_CURSORS = [
    "!!!!",
    "abc",
    "a" * 1025,
    "",
    forge([1, 2]),
    forge({"s": "newest"}),
    forge({"s": "newest", "k": ["yesterday", str(uuid4())]}),
    forge({"s": "newest", "k": ["2031-01-01T00:00:00", str(uuid4())]}),  # naive time
    forge({"s": "newest", "k": ["2031-01-01T00:00:00+00:00", "not-a-uuid"]}),
    forge({"s": "newest", "k": ["2031-01-01T00:00:00+00:00", str(uuid4()), 3]}),
    forge({"s": "newest", "k": [None, str(uuid4())]}),
    forge({"s": "oldest", "k": ["2031-01-01T00:00:00+00:00", str(uuid4())]}),  # other order
]


@pytest.mark.parametrize(
    "path",
    ["/api/projects", "members", "stages", "documents", "raid", "memories"],
)
def test_malformed_cursors_and_limits_are_422_problems(api: Api, path: str) -> None:
    org = api.new_org()
    project = api.create_project("olive", org)
    api.catch_up(ProjectListsProjection())
    h = dev("olive", org)
    url = path if path.startswith("/") else f"/api/projects/{project}/{path}"
    start = api.max_position()
    for cursor in BAD_CURSORS:
        response = api.client.get(url, params={"cursor": cursor}, headers=h)
        assert_problem(response, 422)
    for limit in ("0", "201", "-1", "many"):
        assert_problem(api.client.get(url, params={"limit": limit}, headers=h), 422)
    assert api.max_position() == start  # nothing was written (no denial either)


def test_a_cursor_of_one_sort_is_refused_by_another(api: Api) -> None:
    org = api.new_org()
    project = _bulk_project(api, org, "olive", 3)
    api.catch_up(ProjectListsProjection())
    h = dev("olive", org)
    path = f"/api/projects/{project}/documents"
    cursor = get(api, path, h, limit=1, sort="name")["next_cursor"]
    assert cursor is not None
    body = assert_problem(
        api.client.get(path, params={"cursor": cursor, "sort": "newest"}, headers=h),
        422,
        "invalid-cursor",
    )
    assert "order" in body["detail"]
    raid_cursor = get(api, f"/api/projects/{project}/raid", h, limit=1)["next_cursor"]
    assert_problem(
        api.client.get(
            f"/api/projects/{project}/stages", params={"cursor": raid_cursor}, headers=h
        ),
        422,
        "invalid-cursor",
    )


# Isolation -----------------------------------------------------------------------------

PROJECT_LISTS = ["members", "stages", "documents", "raid", "memories"]


@pytest.mark.parametrize("name", PROJECT_LISTS)
def test_outsiders_get_what_a_missing_project_gets_and_are_recorded(api: Api, name: str) -> None:
    home, other = api.new_org("Home"), api.new_org("Other")
    project = _bulk_project(api, home, "olive", 2)
    api.catch_up(ProjectListsProjection())
    for user, org in [("nina", home), ("mallory", other), ("olive", other)]:
        headers = dev(user, org)
        reference = api.client.get(f"/api/projects/{uuid4()}/{name}", headers=headers)
        expected = assert_problem(reference, 404, "not-found")
        start = api.max_position()
        response = api.client.get(f"/api/projects/{project}/{name}", headers=headers)
        assert without_request(assert_problem(response, 404)) == without_request(expected)
        (denial,) = api.denials_after(start)
        assert (denial.actor, denial.org_id, denial.target_id) == (user, org, str(project))
        # A cursor does not help either: the membership check comes first.
        response = api.client.get(
            f"/api/projects/{project}/{name}", params={"cursor": "!!"}, headers=headers
        )
        assert_problem(response, 404)
    # A guest reads every list.
    api.add_member(project, by="olive", org=home, user="gary", role=Role.GUEST)
    assert items(api, f"/api/projects/{project}/{name}", dev("gary", home))


# Read-your-writes ----------------------------------------------------------------------


def test_a_commands_position_as_min_position_returns_the_new_item(api: Api) -> None:
    host = ProjectionHost([ProjectListsProjection()], api.runtime.database.url)
    host.start()
    try:
        org = api.new_org()
        h = dev("olive", org)

        def posted(path: str, body: dict[str, Any] | None = None, status: int = 201) -> Any:
            response = api.client.post(path, json=body, headers=h)
            assert response.status_code == status, response.text
            return response.json()

        def listed(path: str, position: int, *, header: bool = False, **params: Any) -> Any:
            if header:
                response = api.client.get(
                    path, params=params, headers={**h, "X-Min-Position": str(position)}
                )
            else:
                response = api.client.get(
                    path, params={**params, "min_position": position}, headers=h
                )
            assert response.status_code == 200, response.text
            return response.json()["items"]

        project = posted("/api/projects", {"code": "RYW", "name": "Fresh"})
        assert project["id"] in ids(listed("/api/projects", project["position"]))
        base = f"/api/projects/{project['id']}"
        for round_number in range(3):
            member = f"m{round_number}"
            result = posted(f"{base}/members", {"user_id": member, "role": "member"})
            assert member in ids(listed(f"{base}/members", result["position"]), "user_id")
            stage = posted(f"{base}/stages", {"title": f"S{round_number}"})
            assert stage["id"] in ids(listed(f"{base}/stages", stage["position"], header=True))
            sent = upload(
                api.client,
                project["id"],
                h,
                filename=f"d{round_number}",
                data=bytes([round_number]),
            )
            assert sent.status_code == 201, sent.text
            doc = sent.json()
            assert doc["id"] in ids(listed(f"{base}/documents", doc["position"], q="d"))
            raid = posted(f"{base}/raid", {"kind": "issue", "title": "i"})
            assert raid["id"] in ids(listed(f"{base}/raid", raid["position"], kind="issue"))
            memory = posted(f"{base}/memories", {"title": "m", "body": ""})
            assert memory["id"] in ids(listed(f"{base}/memories", memory["position"]))
            signoff = posted(f"{base}/stages/{stage['id']}/signoff", {"signers": []})
            (row,) = [
                s for s in listed(f"{base}/stages", signoff["position"]) if s["id"] == stage["id"]
            ]
            assert (row["state"], row["signoff_status"]) == ("in_review", "open")
            renamed = api.client.patch(
                f"{base}/artifacts/{doc['id']}", json={"name": f"z{round_number}"}, headers=h
            )
            assert renamed.status_code == 200, renamed.text
            position = renamed.json()["position"]
            found = listed(f"{base}/documents", position, q=f"z{round_number}")
            assert ids(found) == [doc["id"]]
    finally:
        host.stop()
