"""A NUL character anywhere a member can put one never halts a read model (issue 8 review).

PostgreSQL text cannot hold NUL: an event carrying one used to fail the audit feed's and the
document lists' batch for the org, for good (the event stays in the log). The claimed type of
an upload and typed review-queue text were the ways in.
"""

from __future__ import annotations

import psycopg

from tests.api.conftest import Api, dev
from tests.support.ingest_doubles import needs_ocr_artifact


def _halts(api: Api) -> list[tuple[str, str]]:
    with psycopg.connect(api.database_url) as conn:
        return [
            (str(name), str(error))
            for name, error in conn.execute("SELECT name, error FROM projection_halts")
        ]


def test_a_nul_in_the_claimed_type_of_an_upload_is_no_claim(api: Api) -> None:
    org = api.new_org()
    project = api.create_project("olive", org)
    olive = dev("olive", org)
    response = api.client.post(
        f"/api/projects/{project}/artifacts",
        files={"file": ("a.txt", b"hello nul", "text/plain\x00")},
        headers=olive,
    )
    assert response.status_code == 201, response.text
    artifact = response.json()["id"]
    api.catch_up()
    assert _halts(api) == []
    detail = api.client.get(f"/api/projects/{project}/artifacts/{artifact}", headers=olive)
    assert detail.status_code == 200, detail.text
    assert detail.json()["claimed_mime"] is None
    listed = api.client.get(f"/api/projects/{project}/documents", headers=olive)
    assert listed.status_code == 200, listed.text
    assert [d["id"] for d in listed.json()["items"]] == [artifact]


def test_typed_text_with_a_nul_is_recorded_without_it(api: Api) -> None:
    org = api.new_org()
    project = api.create_project("olive", org)
    olive = dev("olive", org)
    artifact = needs_ocr_artifact(api.runtime.app, org, project, actor="olive")
    api.catch_up()
    response = api.client.post(
        f"/api/projects/{project}/review-queue/{artifact}/resolve",
        json={"action": "text", "text": "corrected \u0000 text"},
        headers=olive,
    )
    assert response.status_code == 202, response.text
    api.catch_up()
    assert _halts(api) == []
    events = list(api.runtime.app.artifact_events_after(artifact, 0))
    texts = [p for e in events for p in getattr(e, "pages", [])]
    assert texts == ["corrected  text"]


def test_only_nul_is_no_text(api: Api) -> None:
    org = api.new_org()
    project = api.create_project("olive", org)
    olive = dev("olive", org)
    artifact = needs_ocr_artifact(api.runtime.app, org, project, actor="olive")
    response = api.client.post(
        f"/api/projects/{project}/review-queue/{artifact}/resolve",
        json={"action": "text", "text": "\u0000\u0000"},
        headers=olive,
    )
    assert response.status_code == 422, response.text
