"""Uploads: streamed to the blob store, sniffed, named safely, deduplicated, refused whole."""

from __future__ import annotations

import hashlib
from pathlib import Path
from uuid import UUID

from tests.api.conftest import Api, dev
from tests.support.uploads import PDF_BYTES, upload


def _blob_files(api: Api) -> list[Path]:
    root = api.runtime.settings.blob_dir
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_an_upload_is_stored_sniffed_and_shown_in_the_detail(api: Api) -> None:
    org = api.new_org()
    project = api.create_project("olive", org)
    h = dev("olive", org)
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
    assert detail["source"] == "upload"
    assert detail["tags"] == ["spec", "v1"]
    assert detail["blob_key"].startswith(f"org/{org}/project/{project}/")
    assert detail["blob_key"].endswith("__spec.pdf")
    (stored,) = _blob_files(api)
    assert stored.read_bytes() == PDF_BYTES
