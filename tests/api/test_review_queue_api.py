"""The review queue and reingest over HTTP; ingestion's outcomes in the bell and the audit feed.

Documents are taken through the real ingestion reactor logic and use case (the extractor and
embedder are doubles from tests/support), then the read models are caught up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from application.ingestion_ports import ExtractedText, ExtractionRefused, OcrNeeded
from domain.artifact import Artifact, ExtractionMethod, IngestionState
from domain.roles import Role
from interfaces.http.models.review_queue import MAX_CORRECTED_CHARS, ReviewQueuePageOut
from tests.api.conftest import Api, assert_problem, dev
from tests.support.ingest_doubles import IngestRig

SCAN = OcrNeeded("tesseract_missing", "tesseract is not installed", 2)
REFUSED = ExtractionRefused("encrypted_pdf", "the PDF is encrypted")
TEXT = ExtractedText(ExtractionMethod.TEXT, ["plain words here"])


@pytest.fixture
def rig(api: Api, tmp_path: Path) -> IngestRig:
    return IngestRig(api.runtime.app, tmp_path)


@pytest.fixture
def team(api: Api) -> tuple[UUID, UUID]:
    """An org and a project owned by olive, with max (member), pam (pm) and gus (guest)."""
    org = api.new_org()
    project = api.create_project("olive", org)
    api.add_member(project, by="olive", org=org, user="max")
    api.add_member(project, by="olive", org=org, user="pam", role=Role.PM)
    api.add_member(project, by="olive", org=org, user="gus", role=Role.GUEST)
    return org, project


def queue(api: Api, org: UUID, project: UUID, user: str = "olive", **params: Any) -> Any:
    api.catch_up()
    response = api.client.get(
        f"/api/projects/{project}/review-queue", params=params, headers=dev(user, org)
    )
    assert response.status_code == 200, response.text
    ReviewQueuePageOut.model_validate(response.json())
    return response.json()


def resolve(api: Api, org: UUID, project: UUID, item: UUID, body: Any, user: str = "olive") -> Any:
    return api.client.post(
        f"/api/projects/{project}/review-queue/{item}/resolve", json=body, headers=dev(user, org)
    )


def artifact(api: Api, artifact_id: UUID) -> Artifact:
    found: object = api.runtime.app.repository.get(artifact_id)
    assert isinstance(found, Artifact)
    return found


def test_items_are_listed_by_lane_with_their_reasons(
    api: Api, rig: IngestRig, team: tuple[UUID, UUID]
) -> None:
    org, project = team
    scan = rig.ingest(org, project, SCAN, actor="max", name="scan.png")
    locked = rig.ingest(org, project, REFUSED, actor="max", name="locked.pdf")
    rig.ingest(org, project, TEXT, actor="max")

    page = queue(api, org, project)

    assert page["counts"] == {"needs_ocr": 1, "failed": 1}
    assert [(i["id"], i["lane"]) for i in page["items"]] == [
        (str(scan), "needs_ocr"),
        (str(locked), "failed"),
    ]
    first, second = page["items"]
    assert (first["name"], first["reason"], first["detail"], first["page_count"]) == (
        "scan.png",
        "tesseract_missing",
        "tesseract is not installed",
        2,
    )
    assert (first["status"], first["attempts"]) == ("open", None)
    assert (second["reason"], second["attempts"], second["status"]) == ("encrypted_pdf", 1, "open")
    assert [i["id"] for i in queue(api, org, project, lane="failed")["items"]] == [str(locked)]
    # A guest reads the queue too.
    assert queue(api, org, project, "gus")["counts"] == page["counts"]


def test_pages_walk_the_queue_oldest_first(
    api: Api, rig: IngestRig, team: tuple[UUID, UUID]
) -> None:
    org, project = team
    scans = [rig.ingest(org, project, SCAN) for _ in range(3)]
    seen: list[str] = []
    cursor = None
    while True:
        page = queue(api, org, project, limit=2, **({"cursor": cursor} if cursor else {}))
        seen.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [str(s) for s in scans]
    bad = api.client.get(
        f"/api/projects/{project}/review-queue",
        params={"cursor": "not-a-cursor"},
        headers=dev("olive", org),
    )
    assert_problem(bad, 422)


def test_resolving_with_text_records_ocr_resolved_and_the_text_is_indexed(
    api: Api, rig: IngestRig, team: tuple[UUID, UUID]
) -> None:
    org, project = team
    scan = rig.ingest(org, project, SCAN)

    response = resolve(api, org, project, scan, {"action": "text", "pages": ["page one", "two"]})

    assert response.status_code == 202, response.text
    assert response.json()["id"] == str(scan)
    assert api.topics_of(scan)[-1].endswith("Artifact.OcrResolved")
    assert queue(api, org, project)["items"] == []  # resolved: it left the queue
    rig.work(scan)
    found = artifact(api, scan)
    assert (found.ingestion, found.method, found.page_count) == (
        IngestionState.INDEXED,
        "manual",
        2,
    )
    assert rig.embedder.embedded == ["page one two"]


def test_retrying_records_reingest_requested_and_success_empties_the_lane(
    api: Api, rig: IngestRig, team: tuple[UUID, UUID]
) -> None:
    org, project = team
    locked = rig.ingest(org, project, REFUSED)

    response = resolve(api, org, project, locked, {"action": "retry"}, user="max")

    assert response.status_code == 202, response.text
    assert api.topics_of(locked)[-1].endswith("Artifact.ReingestRequested")
    (item,) = queue(api, org, project)["items"]
    assert item["status"] == "retrying"
    rig.extractor.outcome = TEXT
    rig.work(locked)
    assert queue(api, org, project)["counts"] == {"needs_ocr": 0, "failed": 0}


def test_a_retry_that_needs_ocr_again_moves_the_item_to_that_lane(
    api: Api, rig: IngestRig, team: tuple[UUID, UUID]
) -> None:
    org, project = team
    locked = rig.ingest(org, project, REFUSED)
    assert resolve(api, org, project, locked, {"action": "retry"}).status_code == 202
    rig.extractor.outcome = SCAN
    rig.work(locked)
    (item,) = queue(api, org, project)["items"]
    assert (item["lane"], item["status"], item["reason"]) == (
        "needs_ocr",
        "open",
        "tesseract_missing",
    )


def test_reingest_records_the_request_and_a_new_job_runs(
    api: Api, rig: IngestRig, team: tuple[UUID, UUID]
) -> None:
    org, project = team
    doc = rig.ingest(org, project, TEXT)
    response = api.client.post(
        f"/api/projects/{project}/artifacts/{doc}/reingest", headers=dev("max", org)
    )
    assert response.status_code == 202, response.text
    assert api.topics_of(doc)[-1].endswith("Artifact.ReingestRequested")
    (job,) = rig.react(doc)
    rig.pipeline.run(job)
    assert artifact(api, doc).ingestion == IngestionState.INDEXED
    assert len(rig.extractor.seen) == 2


def test_deleting_a_document_takes_it_out_of_the_queue(
    api: Api, rig: IngestRig, team: tuple[UUID, UUID]
) -> None:
    org, project = team
    scan = rig.ingest(org, project, SCAN)
    deleted = api.client.delete(
        f"/api/projects/{project}/artifacts/{scan}", headers=dev("olive", org)
    )
    assert deleted.status_code == 200, deleted.text
    assert queue(api, org, project)["counts"] == {"needs_ocr": 0, "failed": 0}
    assert_problem(resolve(api, org, project, scan, {"action": "retry"}), 404)


def test_another_projects_items_are_never_visible_or_reachable(
    api: Api, rig: IngestRig, team: tuple[UUID, UUID]
) -> None:
    org, project = team
    other_org = api.new_org("Other")
    elsewhere = api.create_project("olive", other_org)
    sibling = api.create_project("olive", org)
    theirs = rig.ingest(other_org, elsewhere, SCAN)
    sibling_scan = rig.ingest(org, sibling, SCAN)
    mine = rig.ingest(org, project, SCAN)

    assert [i["id"] for i in queue(api, org, project)["items"]] == [str(mine)]
    for foreign in (theirs, sibling_scan):
        assert_problem(resolve(api, org, project, foreign, {"action": "retry"}), 404)
        assert_problem(
            api.client.post(
                f"/api/projects/{project}/artifacts/{foreign}/reingest", headers=dev("olive", org)
            ),
            404,
        )
    # Another org's caller gets the 404 of a missing project, for the list too.
    assert_problem(
        api.client.get(f"/api/projects/{project}/review-queue", headers=dev("olive", other_org)),
        404,
    )
    assert artifact(api, theirs).ingestion == IngestionState.NEEDS_OCR
    assert artifact(api, sibling_scan).ingestion == IngestionState.NEEDS_OCR


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"action": "text", "text": "   \n "}, 422),
        ({"action": "text", "pages": []}, 422),
        ({"action": "text"}, 422),
        ({"action": "text", "text": "a", "pages": ["b"]}, 422),
        ({"action": "retry", "text": "a"}, 422),
        ({"action": "burn"}, 422),
        ({"action": "text", "text": "x" * (MAX_CORRECTED_CHARS + 1)}, 422),
        ({"action": "text", "pages": ["x" * 300_000, "y" * 300_000]}, 422),
        ({"action": "text", "text": "x" * 2_000_000}, 413),
    ],
    ids=[
        "blank",
        "no-pages",
        "no-text",
        "both",
        "retry-with-text",
        "unknown",
        "huge",
        "huge-in-pages",
        "over-body-limit",
    ],
)
def test_bad_resolutions_are_problems_and_change_nothing(
    api: Api, rig: IngestRig, team: tuple[UUID, UUID], body: Any, status: int
) -> None:
    org, project = team
    scan = rig.ingest(org, project, SCAN)
    before = api.max_position()
    assert_problem(resolve(api, org, project, scan, body), status)
    assert api.max_position() == before


def test_unknown_items_and_documents_with_no_item_are_404(
    api: Api, rig: IngestRig, team: tuple[UUID, UUID]
) -> None:
    org, project = team
    done = rig.ingest(org, project, TEXT)
    for item in (uuid4(), done):
        body = assert_problem(resolve(api, org, project, item, {"action": "retry"}), 404)
        assert body["type"].endswith("/not-found")
    assert_problem(
        api.client.post(
            f"/api/projects/{project}/artifacts/{uuid4()}/reingest", headers=dev("olive", org)
        ),
        404,
    )


def test_guests_read_the_queue_but_cannot_resolve_or_reingest(
    api: Api, rig: IngestRig, team: tuple[UUID, UUID]
) -> None:
    org, project = team
    scan = rig.ingest(org, project, SCAN)
    assert_problem(resolve(api, org, project, scan, {"action": "retry"}, user="gus"), 403)
    assert_problem(
        api.client.post(
            f"/api/projects/{project}/artifacts/{scan}/reingest", headers=dev("gus", org)
        ),
        403,
    )
    assert artifact(api, scan).ingestion == IngestionState.NEEDS_OCR


def test_the_bell_tells_the_uploader_and_the_pms_that_a_document_needs_ocr(
    api: Api, rig: IngestRig, team: tuple[UUID, UUID]
) -> None:
    org, project = team
    scan = rig.ingest(org, project, SCAN, actor="max", name="contract-scan.pdf")
    api.catch_up()

    def ocr_notifications(user: str) -> list[dict[str, Any]]:
        response = api.client.get("/api/notifications", headers=dev(user, org))
        assert response.status_code == 200, response.text
        return [i for i in response.json()["items"] if i["action"] == "artifact.ocr_needed"]

    for user in ("max", "pam"):  # the uploader and the project's pm
        (item,) = ocr_notifications(user)
        assert item["title"] == "Document needs OCR: contract-scan.pdf"
        assert item["link"] == f"/api/projects/{project}/artifacts/{scan}"
        assert item["actor"] == "service:ingestion"
    for user in ("gus", "olive"):  # neither the uploader nor a pm (the rule's audience)
        assert ocr_notifications(user) == []


def test_the_audit_feed_shows_each_ingestion_outcome(
    api: Api, rig: IngestRig, team: tuple[UUID, UUID]
) -> None:
    org, project = team
    doc = rig.ingest(org, project, TEXT)
    scan = rig.ingest(org, project, SCAN)
    locked = rig.ingest(org, project, REFUSED)
    assert resolve(api, org, project, scan, {"action": "text", "text": "typed"}).status_code == 202
    rig.work(scan)
    api.catch_up()

    response = api.client.get(
        "/api/audit/list",
        params={"project_id": str(project), "limit": 200},
        headers=dev("olive", org),
    )
    assert response.status_code == 200, response.text
    by_document: dict[str, list[str]] = {}
    for item in reversed(response.json()["items"]):
        by_document.setdefault(item["aggregate_id"], []).append(item["action"])
    assert by_document[str(doc)] == [
        "artifact.uploaded",
        "artifact.ingestion_queued",
        "artifact.text_extracted",
        "artifact.indexed",
    ]
    assert by_document[str(scan)][-3:] == [
        "artifact.ocr_needed",
        "artifact.ocr_resolved",
        "artifact.indexed",
    ]
    assert by_document[str(locked)][-1] == "artifact.ingestion_failed"
