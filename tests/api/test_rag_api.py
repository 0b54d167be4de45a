"""Retrieval over HTTP on the real app and database: search (and as of then), ask, publishing
and the marketplace, over the real parts: documents indexed by the pipeline's index step with
the real MiniLM embedder, the `rag_chunks` projection caught up, `PostgresChunkSearch`."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest

from domain.roles import Role
from domain.stamps import Stamp
from interfaces.http.rate_limits.classes import ORG_ASK, ORG_RAG_SEARCH, org_class
from interfaces.retrieval import UnwiredIndex, build_retrieval
from tests.api.conftest import Api, assert_problem, dev
from tests.support.embedding import shared_real_embedder
from tests.support.indexing import RealIndexer
from tests.support.retrieval import DownAnswerer

FILLER = "The team reviewed the schedule and the budget with the client."


@pytest.fixture
def indexer(api: Api) -> Iterator[RealIndexer]:
    indexer = RealIndexer(api.runtime.app, api.database_url, shared_real_embedder())
    try:
        yield indexer
    finally:
        indexer.close()


def document(
    api: Api, indexer: RealIndexer, org: UUID, project: UUID, text: str, name: str = "minutes.txt"
) -> UUID:
    """A two-page document, text recorded and indexed (catch the index up to find it)."""
    return indexer.document(
        stamp=Stamp(org, "olive", f"doc-{uuid4()}", api.clock.now(), project),
        name=name,
        pages=[f"{FILLER} Cover page.", text],
    )


def search(api: Api, project: UUID, headers: dict[str, str], **query: Any) -> Any:
    return api.client.get(f"/api/projects/{project}/rag/search", params=query, headers=headers)


@pytest.fixture
def scene(api: Api, indexer: RealIndexer) -> tuple[UUID, UUID, UUID]:
    org = api.new_org()
    project = api.create_project("olive", org)
    artifact = document(
        api,
        indexer,
        org,
        project,
        f"{FILLER} The launch date is 14 March 2031, after client sign-off.",
    )
    api.catch_up()
    return org, project, artifact


def test_search_returns_chunks_with_source_page_snippet_and_score(
    api: Api, scene: tuple[UUID, UUID, UUID]
) -> None:
    org, project, artifact = scene
    response = search(api, project, dev("olive", org), q="launch date", k=3)
    assert response.status_code == 200, response.text
    body = response.json()
    first = body["items"][0]
    assert first["source_kind"] == "artifact"
    assert first["source_id"] == str(artifact)
    assert first["source_name"] == "minutes.txt"
    assert first["page"] == 1  # the chunk starts on the cover page and runs onto page 2
    assert "launch" in first["snippet"]
    assert len(first["snippet"]) <= 242
    assert first["score"] > 0
    assert body["as_of_position"] is None
    assert len(body["items"]) <= 3
    # The chunks carry the real model's vectors (the hybrid search ranks by both).
    with psycopg.connect(api.database_url) as conn:
        models = conn.execute(
            "SELECT DISTINCT embedding_model FROM rag_chunks WHERE source_id = %s"
            " AND embedding IS NOT NULL",
            (artifact,),
        ).fetchall()
    assert models == [(shared_real_embedder().model_id,)]


@pytest.mark.parametrize(
    "query",
    [
        {"q": ""},
        {"q": "x" * 501},
        {"q": "ok", "k": 0},
        {"q": "ok", "k": 51},
        {"q": "ok", "as_of": "yesterday"},
        {"q": "ok", "as_of": "2031-03-14T09:30:00"},
        {"q": "   "},
        {},
    ],
)
def test_bad_search_input_is_a_422_and_records_nothing(
    api: Api, scene: tuple[UUID, UUID, UUID], query: dict[str, Any]
) -> None:
    org, project, _ = scene
    start = api.max_position()
    assert_problem(search(api, project, dev("olive", org), **query), 422)
    assert api.max_position() == start


def test_as_of_searches_what_was_retrievable_then_for_auditing_roles_only(
    api: Api, scene: tuple[UUID, UUID, UUID]
) -> None:
    org, project, artifact = scene
    then = api.clock.now()
    position = api.max_position()
    api.clock.advance(timedelta(hours=1))
    deleted = api.client.delete(
        f"/api/projects/{project}/artifacts/{artifact}", headers=dev("olive", org)
    )
    assert deleted.status_code == 200, deleted.text
    api.catch_up()
    owner = dev("olive", org)
    assert search(api, project, owner, q="launch").json()["items"] == []

    by_position = search(api, project, owner, q="launch", as_of=str(position)).json()
    assert [i["source_id"] for i in by_position["items"]] == [str(artifact)]
    assert by_position["as_of_position"] == position

    by_time = search(api, project, owner, q="launch", as_of=then.isoformat()).json()
    assert [i["source_id"] for i in by_time["items"]] == [str(artifact)]
    assert by_time["as_of_position"] == position

    api.add_member(project, by="olive", org=org, user="mia", role=Role.MEMBER)
    start = api.max_position()
    refused = search(api, project, dev("mia", org, Role.MEMBER), q="launch", as_of=str(position))
    assert "audit" in assert_problem(refused, 403, "forbidden")["detail"]
    (denial,) = api.denials_after(start)
    assert denial.reason == "missing_permission:audit"


def test_ask_answers_from_the_project_with_citations(
    api: Api, scene: tuple[UUID, UUID, UUID]
) -> None:
    org, project, artifact = scene
    api.add_member(project, by="olive", org=org, user="gary", role=Role.GUEST)
    start = api.max_position()
    response = api.client.post(
        f"/api/projects/{project}/rag/ask",
        json={"question": "When is the launch date?", "k": 4},
        headers=dev("gary", org, Role.MEMBER),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["answered_by"] == "extractive"
    assert body["answer"].startswith("The launch date is 14 March 2031, after client sign-off. [1]")
    (citation,) = body["citations"]
    assert citation["marker"] == 1
    assert citation["source_id"] == str(artifact)
    assert citation["source_name"] == "minutes.txt"
    assert "launch date" in citation["snippet"]
    assert api.max_position() == start  # a question is a read


@pytest.mark.parametrize(
    "body",
    [
        {"question": ""},
        {"question": "x" * 2001},
        {"question": "ok", "k": 0},
        {"question": "ok", "k": 51},
        {"question": "ok", "extra": 1},
        {"question": "a\u0000b"},
    ],
)
def test_bad_questions_are_a_422(
    api: Api, scene: tuple[UUID, UUID, UUID], body: dict[str, Any]
) -> None:
    org, project, _ = scene
    response = api.client.post(
        f"/api/projects/{project}/rag/ask", json=body, headers=dev("olive", org)
    )
    assert_problem(response, 422)


def test_an_unwired_index_or_a_failing_answerer_is_a_503_to_retry(
    api: Api, scene: tuple[UUID, UUID, UUID]
) -> None:
    org, project, _ = scene
    # A process whose model could not load serves search with UnwiredIndex: 503, not "nothing".
    unwired = UnwiredIndex()
    api.app.state.retrieval = build_retrieval(api.runtime, embedder=unwired, chunks=unwired)
    for response in (
        search(api, project, dev("olive", org), q="launch"),
        api.client.get("/api/marketplace/search", params={"q": "x"}, headers=dev("olive", org)),
    ):
        assert_problem(response, 503, "index-unavailable")
        assert response.headers["retry-after"] == "5"
    api.app.state.retrieval = build_retrieval(
        api.runtime, embedder=shared_real_embedder(), answerer=DownAnswerer()
    )
    response = api.client.post(
        f"/api/projects/{project}/rag/ask", json={"question": "launch?"}, headers=dev("olive", org)
    )
    assert_problem(response, 503, "answerer-unavailable")


def test_canaries_never_cross_projects_or_orgs(api: Api, indexer: RealIndexer) -> None:
    canaries: dict[UUID, tuple[UUID, str]] = {}
    for org_name in ("Acme", "Globex"):
        org = api.new_org(org_name)
        for _ in range(2):
            project = api.create_project("olive", org)
            canary = f"canary{uuid4().hex}"
            document(api, indexer, org, project, f"The secret code is {canary}.")
            canaries[project] = (org, canary)
    api.catch_up()
    for project, (org, own) in canaries.items():
        for _, probe in canaries.values():
            headers = dev("olive", org)
            found = search(api, project, headers, q=f"secret code {probe}", k=50).text
            asked = api.client.post(
                f"/api/projects/{project}/rag/ask",
                json={"question": f"What is the secret code {probe}?", "k": 50},
                headers=headers,
            ).text
            for _, other in canaries.values():
                if other != own:
                    assert other not in found
                    assert other not in asked
            assert own in found


def test_publishing_is_owner_and_admin_only_audited_and_feeds_the_marketplace(
    api: Api, indexer: RealIndexer
) -> None:
    org = api.new_org("Secretive Org")
    project = api.create_project("olive", org, "TOPSECRET-PROJECT")
    public = f"canary{uuid4().hex}"
    private = f"canary{uuid4().hex}"
    shared = document(api, indexer, org, project, f"Open guide {public}.", "guide.txt")
    document(api, indexer, org, project, f"Private plan {private}.", "plan.txt")
    api.catch_up()
    api.add_member(project, by="olive", org=org, user="pam", role=Role.PM)
    url = f"/api/projects/{project}/artifacts/{shared}"

    start = api.max_position()
    refused = api.client.post(f"{url}/publish", headers=dev("pam", org, Role.MEMBER))
    assert_problem(refused, 403, "forbidden")
    (denial,) = api.denials_after(start)
    assert denial.reason == "missing_permission:publish"

    stranger_org = api.new_org("Other")
    stranger = dev("sam", stranger_org, Role.GUEST)

    def market(q: str) -> dict[str, Any]:
        response = api.client.get("/api/marketplace/search", params={"q": q}, headers=stranger)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    assert market(public)["items"] == []
    published = api.client.post(f"{url}/publish", headers=dev("olive", org))
    assert published.status_code == 200, published.text
    assert api.topics_of(shared)[-1] == "Artifact.Published"
    api.catch_up()

    for q in (public, private, "guide plan"):
        body = market(q)
        text = str(body)
        assert private not in text
        assert str(org) not in text
        assert str(project) not in text
        assert "TOPSECRET" not in text
        assert "Secretive" not in text
        for item in body["items"]:
            assert set(item) == {"artifact_id", "name", "page", "snippet", "score"}
    (hit,) = market(public)["items"]
    assert hit["artifact_id"] == str(shared)
    assert hit["name"] == "guide.txt"
    assert public in hit["snippet"]

    withdrawn = api.client.post(f"{url}/unpublish", headers=dev("olive", org))
    assert withdrawn.status_code == 200, withdrawn.text
    assert api.topics_of(shared)[-1] == "Artifact.Unpublished"
    api.catch_up()
    assert market(public)["items"] == []
    feed = api.client.get(
        "/api/audit/list", params={"project_id": str(project)}, headers=dev("olive", org)
    ).json()
    actions = [row["action"] for row in feed["items"]]
    assert "artifact.published" in actions
    assert "artifact.unpublished" in actions


def test_retrieval_routes_draw_on_their_org_buckets() -> None:
    assert org_class("GET", "/api/marketplace/search") == ORG_RAG_SEARCH
    assert org_class("GET", "/api/projects/{project_id}/rag/search") == ORG_RAG_SEARCH
    assert org_class("POST", "/api/projects/{project_id}/rag/ask") == ORG_ASK
    assert org_class("POST", "/api/projects/{project_id}/artifacts/{artifact_id}/publish") == (
        "org_commands"
    )


def test_openapi_declares_every_status(api: Api) -> None:
    paths = api.client.get("/openapi.json").json()["paths"]
    expected = {
        ("/api/projects/{project_id}/rag/search", "get"): {
            "401",
            "403",
            "404",
            "422",
            "429",
            "503",
        },
        ("/api/projects/{project_id}/rag/ask", "post"): {"401", "403", "404", "422", "429", "503"},
        ("/api/marketplace/search", "get"): {"401", "422", "429", "503"},
        ("/api/projects/{project_id}/artifacts/{artifact_id}/publish", "post"): {
            "401",
            "403",
            "404",
            "409",
            "422",
            "429",
        },
    }
    for (path, method), statuses in expected.items():
        assert statuses <= set(paths[path][method]["responses"]), (path, method)


def test_min_position_waits_for_the_index_and_a_position_beyond_the_log_is_a_422(
    api: Api, indexer: RealIndexer, scene: tuple[UUID, UUID, UUID]
) -> None:
    org, project, _ = scene
    late = document(api, indexer, org, project, "Addendum: the venue moved to the harbour hall.")
    head = api.max_position()
    # Not applied yet: a search without a position answers from the index as it is.
    assert search(api, project, dev("olive", org), q="venue harbour").json()["items"][0][
        "source_id"
    ] != str(late)
    # The index catches up on another thread while the request waits for `head`: whichever
    # comes first, the answer is given from an index that holds the addendum.
    worker = threading.Thread(target=api.catch_up)
    worker.start()
    try:
        ok = search(api, project, dev("olive", org), q="venue harbour", min_position=head)
    finally:
        worker.join(timeout=60)
    assert ok.status_code == 200, ok.text
    assert ok.json()["items"][0]["source_id"] == str(late)
    beyond = search(api, project, dev("olive", org), q="launch", min_position=head + 1000)
    assert_problem(beyond, 422, "position-beyond-log")


def test_an_as_of_position_beyond_the_log_is_a_422_before_any_check(
    api: Api, scene: tuple[UUID, UUID, UUID]
) -> None:
    org, project, _ = scene
    start = api.max_position()
    beyond = search(api, project, dev("olive", org), q="launch", as_of=str(start + 1000))
    assert_problem(beyond, 422, "position-beyond-log")
    assert api.max_position() == start
