"""The orphan sweep: a blob no upload event names (a crash between storing and recording)
is deleted once old enough; recorded blobs, every version's, stay."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from adapters.blobs.local import LocalBlobStore
from adapters.blobs.orphans import sweep_orphans
from adapters.postgres.blob_references import referenced_blob_keys
from adapters.postgres.database import DatabaseUrl
from adapters.scheduler.blob_sweep_job import BLOB_SWEEP_JOB
from domain.blob_keys import blob_key
from tests.api.conftest import Api, dev
from tests.support.uploads import upload


def test_only_blobs_no_event_names_are_swept(api: Api) -> None:
    org = api.new_org()
    project = api.create_project("olive", org)
    h = dev("olive", org)
    first = upload(api.client, project, h).json()
    upload(api.client, project, h, query="?on_duplicate=new_version")  # version 2, own blob
    store = api.runtime.blobs
    assert isinstance(store, LocalBlobStore)
    orphan = blob_key(org, project, uuid4(), "crashed.pdf")
    store.put(orphan, [b"stored, never recorded"], max_bytes=100)
    temporary = f"org/{org}/project/{project}/.upload-abc.part"
    (api.runtime.settings.blob_dir / temporary).write_bytes(b"half a write")
    stray = f"org/{org}/elsewhere.bin"
    store.put(stray, [b"no upload makes such a key"], max_bytes=100)
    recorded = api.client.get(f"/api/projects/{project}/artifacts/{first['id']}", headers=h)
    current = recorded.json()["blob_key"]

    def referenced(keys: Sequence[str]) -> set[str]:
        return referenced_blob_keys(DatabaseUrl.parse(api.database_url), keys)

    now = datetime.now(UTC)
    young = sweep_orphans(store, referenced, older_than=now - timedelta(hours=1))
    assert (young.checked, young.deleted) == (0, [])  # nothing is old enough yet
    swept = sweep_orphans(store, referenced, older_than=now + timedelta(minutes=1))
    assert sorted(swept.deleted) == sorted([orphan, temporary, stray])
    assert swept.checked == 5
    left = sorted(store.list_keys("org/", older_than=now + timedelta(minutes=1)))
    assert len(left) == 2
    assert current in left
    assert store.exists(current)
    assert not store.exists(orphan)


def test_the_sweep_is_a_scheduled_job(api: Api) -> None:
    assert BLOB_SWEEP_JOB in {job.id for job in api.runtime.jobs}
