"""The upload and download routes end to end on the S3 blob store (moto's real S3 server on
loopback): a multipart-sized upload, ranges, dedupe, and an oversize upload leaving no object."""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import cast
from uuid import UUID, uuid4

import httpx
import pytest
from starlette.exceptions import StarletteDeprecationWarning

from adapters.blobs.orphans import sweep_orphans
from adapters.blobs.s3 import S3BlobStore, make_s3_client
from adapters.postgres.blob_references import referenced_blob_keys
from adapters.postgres.database import DatabaseUrl
from domain.blob_keys import blob_key
from tests.api.conftest import Api, _build, assert_problem, dev
from tests.support import multipart
from tests.support.clocks import SettableClock
from tests.support.s3_server import TEST_BUCKET, TEST_REGION, running_s3_server
from tests.support.uploads import upload

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

MiB = 1024 * 1024
LIMIT = 12 * MiB


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with running_s3_server() as endpoint:
        yield endpoint


@pytest.fixture
def on_s3(database_url: str, clock: SettableClock, s3_endpoint: str) -> Iterator[Api]:
    runtime, app = _build(
        database_url,
        clock,
        blob_store="s3",
        s3_endpoint_url=s3_endpoint,
        s3_bucket=TEST_BUCKET,
        s3_region=TEST_REGION,
        s3_access_key_id="test",
        s3_secret_access_key="test",
        blob_max_bytes=LIMIT,
    )
    try:
        assert isinstance(runtime.blobs, S3BlobStore)
        with TestClient(app, raise_server_exceptions=False) as client:
            yield Api(
                runtime=runtime,
                app=app,
                client=cast(httpx.Client, client),
                clock=clock,
                database_url=database_url,
            )
    finally:
        runtime.close()


def _objects(endpoint: str, prefix: str) -> list[str]:
    client = make_s3_client(
        endpoint_url=endpoint, region=TEST_REGION, access_key_id="test", secret_access_key="test"
    )
    listed = client.list_objects_v2(Bucket=TEST_BUCKET, Prefix=prefix)
    return [item["Key"] for item in listed.get("Contents", [])]


def _pending_uploads(endpoint: str, prefix: str) -> list[str]:
    client = make_s3_client(
        endpoint_url=endpoint, region=TEST_REGION, access_key_id="test", secret_access_key="test"
    )
    listed = client.list_multipart_uploads(Bucket=TEST_BUCKET, Prefix=prefix)
    return [item["Key"] for item in listed.get("Uploads", [])]


def test_upload_and_download_through_s3(on_s3: Api, s3_endpoint: str) -> None:
    api = on_s3
    org = api.new_org()
    project = api.create_project("olive", org)
    h = dev("olive", org)
    prefix = f"org/{org}/project/{project}/"
    size = 9 * MiB  # past one 8 MiB part: a multipart upload
    response = api.client.post(
        f"/api/projects/{project}/artifacts",
        content=multipart.streamed(b"../../big.bin", size),
        headers={**h, "Content-Type": multipart.CONTENT_TYPE},
    )
    assert response.status_code == 201, response.text
    assert response.json()["sha256"] == multipart.pattern_sha256(size)
    artifact = UUID(response.json()["id"])
    (key,) = _objects(s3_endpoint, prefix)
    assert key.startswith(prefix)
    assert key.endswith("__big.bin")
    url = f"/api/projects/{project}/artifacts/{artifact}/content"
    whole = api.client.get(url, headers=h)
    assert whole.status_code == 200
    assert hashlib.sha256(whole.content).hexdigest() == response.json()["sha256"]
    part = api.client.get(url, headers={**h, "Range": f"bytes={8 * MiB - 2}-{8 * MiB + 1}"})
    assert part.status_code == 206
    assert part.content == whole.content[8 * MiB - 2 : 8 * MiB + 2]
    assert_problem(api.client.get(url, headers={**h, "Range": f"bytes={size}-"}), 416)
    # The same bytes again: answered by the first document, the second object deleted.
    again = api.client.post(
        f"/api/projects/{project}/artifacts",
        content=multipart.streamed(b"copy.bin", size),
        headers={**h, "Content-Type": multipart.CONTENT_TYPE},
    )
    assert (again.status_code, again.json()["id"]) == (200, str(artifact))
    assert _objects(s3_endpoint, prefix) == [key]


def test_an_oversize_upload_leaves_no_object_and_no_part(on_s3: Api, s3_endpoint: str) -> None:
    api = on_s3
    org = api.new_org()
    project = api.create_project("olive", org)
    before = api.max_position()
    response = api.client.post(
        f"/api/projects/{project}/artifacts",
        content=multipart.streamed(b"huge.bin", LIMIT + 1),
        headers={**dev("olive", org), "Content-Type": multipart.CONTENT_TYPE},
    )
    assert_problem(response, 413, "content-too-large")
    prefix = f"org/{org}/project/{project}/"
    assert _objects(s3_endpoint, prefix) == []
    assert _pending_uploads(s3_endpoint, prefix) == []
    assert api.max_position() == before


def test_the_orphan_sweep_lists_and_deletes_on_s3(on_s3: Api, s3_endpoint: str) -> None:
    api = on_s3
    org = api.new_org()
    project = api.create_project("olive", org)
    recorded = upload(api.client, project, dev("olive", org)).json()
    store = api.runtime.blobs
    assert isinstance(store, S3BlobStore)
    orphan = blob_key(org, project, uuid4(), "crashed.pdf")
    store.put(orphan, [b"never recorded"], max_bytes=100)
    result = sweep_orphans(
        store,
        lambda keys: referenced_blob_keys(DatabaseUrl.parse(api.database_url), keys),
        older_than=datetime.now(UTC) + timedelta(minutes=1),
    )
    prefix = f"org/{org}/project/{project}/"
    assert orphan in result.deleted
    (left,) = _objects(s3_endpoint, prefix)
    assert left == f"{prefix}{left.removeprefix(prefix)}"
    assert left != orphan
    assert recorded["id"]
