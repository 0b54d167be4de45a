"""Uploads: streamed to the blob store, sniffed, named safely, deduplicated, refused whole."""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest

from domain.roles import Role
from projections.lists import ProjectListsProjection
from tests.api.conftest import Api, assert_problem, dev
from tests.support import multipart
from tests.support.uploads import PDF_BYTES, upload

ARTIFACT_TOPICS = ("Uploaded", "VersionUploaded")


def blob_files(api: Api) -> list[Path]:
    """Every file under the blob store's root, temporary ones included."""
    root = api.runtime.settings.blob_dir
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def artifact_events_after(api: Api, position: int) -> list[str]:
    return [r.topic for r in api.rows_after(position) if r.topic.endswith(ARTIFACT_TOPICS)]


def post_raw(
    api: Api, project: UUID, h: dict[str, str], content: bytes | Iterator[bytes], query: str = ""
) -> httpx.Response:
    return api.client.post(
        f"/api/projects/{project}/artifacts{query}",
        content=content,
        headers={**h, "Content-Type": multipart.CONTENT_TYPE},
    )


@pytest.fixture
def scene(api: Api) -> tuple[UUID, UUID, dict[str, str]]:
    org = api.new_org()
    project = api.create_project("olive", org)
    return org, project, dev("olive", org)


def test_an_upload_is_stored_sniffed_and_shown_in_the_detail(
    api: Api, scene: tuple[UUID, UUID, dict[str, str]]
) -> None:
    org, project, h = scene
    response = upload(api.client, project, h, filename="spec.pdf", tags=["Spec", "v1"])
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["duplicate"] is False
    assert body["mime"] == "application/pdf"
    assert body["sha256"] == hashlib.sha256(PDF_BYTES).hexdigest()
    assert body["size"] == len(PDF_BYTES)
    artifact = UUID(body["id"])
    assert response.headers["location"] == f"/api/projects/{project}/artifacts/{artifact}"
    detail = api.client.get(f"/api/projects/{project}/artifacts/{artifact}", headers=h).json()
    assert detail["content_version"] == 1
    assert detail["ingestion"] == "pending"
    assert (detail["source"], detail["source_url"]) == ("upload", None)
    assert detail["tags"] == ["spec", "v1"]
    assert (detail["claimed_mime"], detail["mime_mismatch"]) == ("application/pdf", False)
    assert (detail["method"], detail["page_count"], detail["reason"]) == (None, None, None)
    assert detail["published"] is False
    assert detail["blob_key"].startswith(f"org/{org}/project/{project}/")
    assert detail["blob_key"].endswith("__spec.pdf")
    (stored,) = blob_files(api)
    assert stored.read_bytes() == PDF_BYTES
    assert stored == api.runtime.settings.blob_dir / detail["blob_key"]


def test_the_documents_list_shows_content_and_ingestion(
    api: Api, scene: tuple[UUID, UUID, dict[str, str]]
) -> None:
    _, project, h = scene
    html = b"<!doctype html><html><body>hi</body></html>"
    sent = upload(api.client, project, h, filename="page.png", data=html, content_type="image/png")
    assert sent.status_code == 201, sent.text
    api.catch_up(ProjectListsProjection())
    (row,) = api.client.get(f"/api/projects/{project}/documents", headers=h).json()["items"]
    assert row["id"] == sent.json()["id"]
    assert (row["mime"], row["claimed_mime"], row["mime_mismatch"]) == (
        "text/html",
        "image/png",
        True,
    )
    assert (row["content_version"], row["ingestion"], row["source"]) == (1, "pending", "upload")


def test_a_claimed_type_never_wins_over_the_bytes(
    api: Api, scene: tuple[UUID, UUID, dict[str, str]]
) -> None:
    _, project, h = scene
    # A PDF sent as a PNG, and a web page sent as a PDF: stored as what they are, flagged.
    for data, claim, sniffed in [
        (PDF_BYTES, "image/png", "application/pdf"),
        (b"<html><script>alert(1)</script></html>", "application/pdf", "text/html"),
    ]:
        response = upload(api.client, project, h, filename="x.png", data=data, content_type=claim)
        assert response.status_code == 201, response.text
        body = response.json()
        assert (body["mime"], body["claimed_mime"], body["mime_mismatch"]) == (sniffed, claim, True)
        detail = api.client.get(f"/api/projects/{project}/artifacts/{body['id']}", headers=h).json()
        assert (detail["mime"], detail["mime_mismatch"]) == (sniffed, True)


def _docx_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 64 + _docx_bytes(), "polyglot_zip"),
        (b"GIF89a" + b"\0" * 100 + b"%PDF-1.4\n" + b"\0" * 50, "polyglot_pdf"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 64 + b"<script>alert(1)</script>", "polyglot_markup"),
    ],
    ids=["png-with-docx", "gif-hiding-pdf", "png-with-script"],
)
def test_a_polyglot_is_refused_and_leaves_nothing(
    api: Api, scene: tuple[UUID, UUID, dict[str, str]], data: bytes, code: str
) -> None:
    _, project, h = scene
    before = api.max_position()
    response = upload(
        api.client, project, h, filename="cat.png", data=data, content_type="image/png"
    )
    assert assert_problem(response, 415, "polyglot-file")["reason"] == code
    assert blob_files(api) == []
    assert api.max_position() == before


def test_a_docx_is_told_from_a_zip_by_its_central_directory(
    api: Api, scene: tuple[UUID, UUID, dict[str, str]]
) -> None:
    _, project, h = scene
    docx = upload(api.client, project, h, filename="a.docx", data=_docx_bytes(), content_type=None)
    assert docx.json()["mime"] == (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", "<w:document/>")  # no [Content_Types].xml
    plain = upload(api.client, project, h, filename="b.docx", data=buffer.getvalue())
    assert plain.json()["mime"] == "application/zip"


HOSTILE_NAMES = [
    b"../../../../etc/passwd",
    b"..\\..\\windows\\system32\\evil.dll",
    b"/absolute/path/x.pdf",
    b"..",
    b".hidden",
    b"a\x01b\x1b[31mred\x7f.pdf",
    "invoice\u202efdp.exe".encode(),
    "\u200b\u200b".encode(),
    b"x" * 400 + b".pdf",
    b"%2e%2e%2fencoded.pdf",
    "e\u0301\u00e9.pdf".encode(),
]


@pytest.mark.parametrize("raw_name", HOSTILE_NAMES, ids=range(len(HOSTILE_NAMES)))
def test_a_crafted_file_name_cannot_leave_the_project_prefix(
    api: Api, scene: tuple[UUID, UUID, dict[str, str]], raw_name: bytes
) -> None:
    org, project, h = scene
    response = post_raw(api, project, h, multipart.body(raw_name, raw_name + b" content"))
    assert response.status_code == 201, response.text
    detail = api.client.get(
        f"/api/projects/{project}/artifacts/{response.json()['id']}", headers=h
    ).json()
    prefix = f"org/{org}/project/{project}/"
    key: str = detail["blob_key"]
    assert key.startswith(prefix)
    rest = key.removeprefix(prefix)
    assert "/" not in rest
    assert "\\" not in rest
    assert ".." not in rest.split("__", 1)[1][:2]
    name: str = detail["name"]
    assert name.isprintable()
    assert "/" not in name
    assert "\\" not in name
    assert not name.startswith(".")
    assert len(name.encode()) <= 120
    assert "\u202e" not in name
    assert "\u200b" not in name
    project_dir = (api.runtime.settings.blob_dir / prefix).resolve()
    (stored,) = blob_files(api)
    assert stored.resolve().parent == project_dir


def test_the_same_bytes_again_answer_the_existing_document(
    api: Api, scene: tuple[UUID, UUID, dict[str, str]]
) -> None:
    _, project, h = scene
    first = upload(api.client, project, h, filename="a.pdf")
    assert first.status_code == 201
    before = api.max_position()
    again = upload(api.client, project, h, filename="renamed.pdf", tags=["x"])
    assert again.status_code == 200, again.text
    assert again.headers["artifact-duplicate"] == "existing"
    body = again.json()
    assert (body["id"], body["duplicate"], body["position"]) == (first.json()["id"], True, 0)
    assert api.max_position() == before  # nothing recorded
    assert len(blob_files(api)) == 1  # the second copy was deleted
    # Another project does not share it.
    other = api.create_project("olive", UUID(h["X-Dev-Org"]))
    elsewhere = upload(api.client, other, h, filename="a.pdf")
    assert elsewhere.status_code == 201
    assert elsewhere.json()["id"] != first.json()["id"]


def test_the_same_bytes_become_a_new_version_when_asked(
    api: Api, scene: tuple[UUID, UUID, dict[str, str]]
) -> None:
    _, project, h = scene
    first = upload(api.client, project, h, filename="a.pdf").json()
    before = api.max_position()
    again = upload(api.client, project, h, filename="a.pdf", query="?on_duplicate=new_version")
    assert again.status_code == 200, again.text
    assert again.headers["artifact-duplicate"] == "new_version"
    body = again.json()
    assert (body["id"], body["content_version"]) == (first["id"], 2)
    assert artifact_events_after(api, before) == ["domain.artifact:Artifact.VersionUploaded"]
    detail = api.client.get(f"/api/projects/{project}/artifacts/{first['id']}", headers=h).json()
    assert detail["content_version"] == 2
    assert len(blob_files(api)) == 2  # each version keeps its own blob
    bad = upload(api.client, project, h, query="?on_duplicate=overwrite")
    assert_problem(bad, 422)


def test_a_deleted_documents_bytes_make_a_new_document(
    api: Api, scene: tuple[UUID, UUID, dict[str, str]]
) -> None:
    _, project, h = scene
    first = upload(api.client, project, h).json()
    gone = api.client.delete(f"/api/projects/{project}/artifacts/{first['id']}", headers=h)
    assert gone.status_code == 200
    again = upload(api.client, project, h)
    assert again.status_code == 201, again.text
    assert again.json()["id"] != first["id"]


def test_who_may_not_write_is_refused_before_a_byte_is_stored(api: Api) -> None:
    org = api.new_org()
    project = api.create_project("olive", org)
    api.add_member(project, by="olive", org=org, user="gus", role=Role.GUEST)
    before = api.max_position()
    response = upload(api.client, project, dev("gus", org, Role.MEMBER))
    assert response.status_code in (403, 404), response.text
    assert blob_files(api) == []
    assert artifact_events_after(api, before) == []
    stranger = upload(api.client, project, dev("zed", api.new_org()))
    assert_problem(stranger, 404)
    assert blob_files(api) == []


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"json": {"name": "a"}}, 415),
        ({"content": b"plain", "headers": {"Content-Type": "text/plain"}}, 415),
        (
            {
                "content": multipart.fields_tail([("name", "x")]).removeprefix(b"\r\n"),
                "headers": {"Content-Type": multipart.CONTENT_TYPE},
            },
            422,
        ),
        (
            {
                "content": b"--wrong\r\n\r\nnot multipart at all",
                "headers": {"Content-Type": multipart.CONTENT_TYPE},
            },
            400,
        ),
        (
            {
                "content": multipart.file_head(b"a.txt") + b"cut short, no closing boundary",
                "headers": {"Content-Type": multipart.CONTENT_TYPE},
            },
            400,
        ),
    ],
    ids=["json", "text", "no-file", "garbage", "cut-short"],
)
def test_a_body_that_is_no_upload_is_refused_without_a_trace(
    api: Api, scene: tuple[UUID, UUID, dict[str, str]], kwargs: dict[str, Any], status: int
) -> None:
    _, project, h = scene
    before = api.max_position()
    headers = {**h, **kwargs.pop("headers", {})}
    response = api.client.post(f"/api/projects/{project}/artifacts", headers=headers, **kwargs)
    assert_problem(response, status)
    assert blob_files(api) == []
    assert api.max_position() == before


def test_an_idempotency_key_on_an_upload_replays_its_first_answer(
    api: Api, scene: tuple[UUID, UUID, dict[str, str]]
) -> None:
    _, project, h = scene
    upload(api.client, project, h)
    keyed = {**h, "Idempotency-Key": "upload-once"}
    # Bigger than the 1 MiB JSON body cap: the key's layer must not buffer (or refuse) it.
    data = PDF_BYTES + b"\0" * (2 * 1024 * 1024)
    first = upload(api.client, project, keyed, data=data, query="?on_duplicate=new_version")
    assert first.status_code == 201, first.text
    before = api.max_position()
    second = upload(api.client, project, keyed, data=data, query="?on_duplicate=new_version")
    assert second.headers.get("idempotent-replayed") == "true"
    assert (second.status_code, second.json()) == (201, first.json())
    assert api.max_position() == before
    assert len(blob_files(api)) == 2
