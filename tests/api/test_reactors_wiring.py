"""`start_reactors` runs every reactor in the process and stops them with the runtime."""

from __future__ import annotations

import time
from pathlib import Path

from adapters.blobs.local import LocalBlobStore
from adapters.mail.file_sink import FileSinkMailer
from application.ingestion_reactor import REACTOR_NAME
from application.outbox_reactor import REACTOR_NAME as OUTBOX
from application.reactors import effect_id_at
from interfaces.reactors import all_reactors, start_reactors
from tests.api.conftest import Api
from tests.support.ingest_doubles import MemoryQueue, upload


def test_the_hosted_ingestion_reactor_enqueues_each_upload(api: Api, tmp_path: Path) -> None:
    queue = MemoryQueue()
    reactors = all_reactors(
        api.runtime.app, queue, api.runtime.settings, FileSinkMailer(tmp_path / "mail")
    )
    assert [reactor.name for reactor in reactors] == [REACTOR_NAME, OUTBOX]
    host = start_reactors(api.runtime, queue)
    org = api.new_org()
    project = api.create_project("olive", org)

    stored = upload(api.runtime.app.save, LocalBlobStore(tmp_path), org, project, b"hello")

    job_id = effect_id_at(REACTOR_NAME, stored.artifact_id, 1)
    deadline = time.monotonic() + 20
    while job_id not in queue.jobs:
        assert time.monotonic() < deadline, "the hosted reactor never enqueued the upload"
        time.sleep(0.05)
    host.stop()
    assert queue.jobs[job_id].org_id == org
