"""`start_reactors` runs every reactor in the process and stops them with the runtime."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

from adapters.blobs.local import LocalBlobStore
from adapters.mail.file_sink import FileSinkMailer
from application.ingestion_reactor import REACTOR_NAME
from application.outbox_reactor import REACTOR_NAME as OUTBOX
from application.reactors import effect_id_at
from domain.email import Email, EmailKind
from domain.stamps import Stamp
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


def test_the_hosted_outbox_writes_queued_mail_to_the_file_sink_by_default(api: Api) -> None:
    host = start_reactors(api.runtime, MemoryQueue())
    org = api.new_org()
    project = api.create_project("olive", org)
    email = Email.queue(
        email_id=uuid4(),
        kind=EmailKind.SIGNOFF_PACKAGE,
        to="client@example.com",
        subject="Please sign off",
        text="Link inside.",
        html="<p>Link inside.</p>",
        mail_domain=api.runtime.app.config.mail_domain,
        stamp=Stamp(org, "service:test", "test", datetime.now(UTC), project_id=project),
    )
    api.runtime.app.save(email)

    written = api.runtime.settings.mail_dir / f"{email.id}.eml"
    deadline = time.monotonic() + 20
    while not written.exists():
        assert time.monotonic() < deadline, "the hosted outbox never wrote the email"
        time.sleep(0.05)
    host.stop()
    assert f"Message-ID: {email.message_id}".encode() in written.read_bytes()
