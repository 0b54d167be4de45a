"""The sign-off package: preview (escaped HTML), send (one command: round, link, email,
`PackageSent`), and the streamed ZIP (manifest, placeholders for missing blobs, bounded memory).
"""

from __future__ import annotations

import hashlib
import io
import json
import tracemalloc
import zipfile
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError

from application.email_links import EmailLinks
from application.mime_message import build_message
from application.signoff_package import PackageRequest
from domain.artifact import Artifact
from domain.email import Email, EmailKind, EmailStatus, LinkName, SigningLink
from domain.roles import Role
from domain.signoff import SignOff, SignOffStatus, hash_token
from domain.stage import Stage, StageState
from projections.audit import AuditProjection
from tests.api.conftest import Api, _build, assert_problem, dev, serve
from tests.support.contexts import user
from tests.support.outbox import SENDER
from tests.support.uploads import PDF_BYTES, upload

HOSTILE = '<script>alert("x")</script>&'
MiB = 1024 * 1024


@pytest.fixture
def api(module_api: Api) -> Api:
    """Each test builds its own org: one database serves the module."""
    return module_api


@dataclass(frozen=True)
class Setup:
    org: UUID
    project: UUID
    stage: UUID
    owner: str
    docs: list[UUID]
    decision: UUID
    risk: UUID
    action: UUID

    @property
    def h(self) -> dict[str, str]:
        return dev(self.owner, self.org)

    def url(self, what: str) -> str:
        return f"/api/projects/{self.project}/signoff/package/{what}"

    def body(self, **extra: Any) -> dict[str, Any]:
        return {
            "stage_id": str(self.stage),
            "message": f"Please sign {HOSTILE}",
            "document_ids": [str(d) for d in self.docs],
            "raid_item_ids": [str(self.decision), str(self.risk), str(self.action)],
            **extra,
        }


def _created(api: Api, setup_h: dict[str, str], path: str, body: dict[str, Any]) -> UUID:
    response = api.client.post(path, json=body, headers=setup_h)
    assert response.status_code == 201, response.text
    return UUID(response.json()["id"])


def _setup(
    api: Api, *, docs: list[tuple[str, bytes]] | None = None, org: UUID | None = None
) -> Setup:
    org = org or api.new_org()
    owner = "olive"
    h = dev(owner, org)
    project = api.create_project(owner, org)
    stage = api.create_stage(project, by=owner, org=org, title=f"Design {HOSTILE}")
    ids = []
    for name, data in docs or [("spec.pdf", PDF_BYTES), ("notes.txt", b"plain notes\n")]:
        response = upload(api.client, project, h, filename=name, data=data, content_type=None)
        assert response.status_code == 201, response.text
        ids.append(UUID(response.json()["id"]))
    raid = f"/api/projects/{project}/raid"
    decision = _created(
        api, h, raid, {"kind": "decision", "title": f"Go {HOSTILE}", "decided_by": "client"}
    )
    risk = _created(api, h, raid, {"kind": "risk", "title": "Vendor slips", "severity": "high"})
    action = _created(api, h, raid, {"kind": "action", "title": "Book the review"})
    return Setup(org, project, stage, owner, ids, decision, risk, action)


def _emails(api: Api, since: int) -> list[UUID]:
    topic = f"{Email.__module__}:{Email.Queued.__qualname__}"
    return [r.originator_id for r in api.rows_after(since) if r.topic == topic]


# Preview -----------------------------------------------------------------------------------


def test_preview_shows_the_selection_with_every_text_escaped(api: Api) -> None:
    s = _setup(api)
    response = api.client.post(s.url("preview"), json=s.body(), headers=s.h)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    page = response.text
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&amp;" in page
    for expected in ("spec.pdf", "notes.txt", "Decisions", "Risks", "Actions", "Vendor slips"):
        assert expected in page
    assert "Book the review" in page
    assert "Issues" not in page  # no issue was picked
    assert api.clock.now().isoformat(timespec="seconds") in page  # generated time
    # A preview records nothing but the read.
    before = api.max_position()
    api.client.post(s.url("preview"), json=s.body(), headers=s.h)
    assert api.max_position() == before


def test_preview_leaves_out_what_was_not_picked(api: Api) -> None:
    s = _setup(api)
    body = s.body(document_ids=[str(s.docs[1])], raid_item_ids=[str(s.risk)])
    page = api.client.post(s.url("preview"), json=body, headers=s.h).text
    assert "notes.txt" in page
    assert "spec.pdf" not in page
    assert "Risks" in page
    assert "Decisions" not in page
    assert "Actions" not in page


# Who may -----------------------------------------------------------------------------------


@pytest.mark.parametrize("what", ["preview", "send", "zip"])
def test_below_pm_is_403_and_outsiders_404(api: Api, what: str) -> None:
    s = _setup(api)
    body = s.body(recipient="client@example.com")
    for role in (Role.LEAD, Role.MEMBER, Role.GUEST):
        user = f"{role.value}-user"
        api.add_member(s.project, by=s.owner, org=s.org, user=user, role=role)
        before = api.max_position()
        refused = api.client.post(s.url(what), json=body, headers=dev(user, s.org))
        assert_problem(refused, 403, "forbidden")
        assert [d.reason for d in api.denials_after(before)] == [
            "missing_permission:invite_external_signer"
        ]
    api.add_member(s.project, by=s.owner, org=s.org, user="pam", role=Role.PM)
    ok = api.client.post(s.url(what), json=body, headers=dev("pam", s.org))
    assert ok.status_code < 300, ok.text
    other = api.new_org()
    assert_problem(api.client.post(s.url(what), json=body, headers=dev("mallory", other)), 404)
    assert_problem(api.client.post(s.url(what), json=body, headers=dev("nina", s.org)), 404)


@pytest.mark.parametrize("what", ["preview", "send", "zip"])
def test_foreign_documents_items_and_stages_are_refused(api: Api, what: str) -> None:
    s = _setup(api)
    # A second project of the same owner in the same org: its ids must not reach this
    # project's package (nor may another org's).
    t = _setup(api, org=s.org)
    u = _setup(api)
    before = api.max_position()
    for body in (
        s.body(document_ids=[str(t.docs[0])], recipient="c@example.com"),
        s.body(document_ids=[str(u.docs[0])], recipient="c@example.com"),
        s.body(raid_item_ids=[str(t.risk)], recipient="c@example.com"),
        s.body(stage_id=str(t.stage), recipient="c@example.com"),
        s.body(document_ids=[str(uuid4())], recipient="c@example.com"),
        s.body(document_ids=[str(s.decision)], recipient="c@example.com"),  # not a document
    ):
        assert_problem(api.client.post(s.url(what), json=body, headers=s.h), 404, "not-found")
    assert api.max_position() == before


def test_a_deleted_document_is_refused(api: Api) -> None:
    s = _setup(api)
    deleted = api.client.delete(f"/api/projects/{s.project}/artifacts/{s.docs[0]}", headers=s.h)
    assert deleted.status_code < 300, deleted.text
    response = api.client.post(s.url("preview"), json=s.body(), headers=s.h)
    assert_problem(response, 404, "not-found")


# Send --------------------------------------------------------------------------------------


def test_send_opens_the_round_issues_the_link_and_queues_the_email(api: Api) -> None:
    s = _setup(api)
    before = api.max_position()
    response = api.client.post(
        s.url("send"), json=s.body(recipient="Client@Example.com"), headers=s.h
    )
    assert response.status_code == 201, response.text
    sent = response.json()
    assert response.headers["cache-control"] == "no-store"
    token = sent["token"]
    assert sent["signing_url"] == f"https://teaim.test/sign#token={token}"
    assert sent["opened_round"] is True

    # The stage is in review with a round whose named signer is the recipient's link.
    stage: object = api.runtime.app.repository.get(s.stage)
    assert isinstance(stage, Stage)
    assert stage.state is StageState.IN_REVIEW
    signoff: object = api.runtime.app.repository.get(UUID(sent["id"]))
    assert isinstance(signoff, SignOff)
    assert signoff.status is SignOffStatus.OPEN
    request = signoff.external[sent["request_id"]]
    assert request.email == "client@example.com"
    assert request.token_hash == hash_token(token)
    assert signoff.named() == {"email:client@example.com"}

    # The email is queued with the link inside, under the id the answer names.
    (email_id,) = _emails(api, before)
    assert str(email_id) == sent["email_id"]
    email: object = api.runtime.app.repository.get(email_id)
    assert isinstance(email, Email)
    assert email.kind is EmailKind.SIGNOFF_PACKAGE
    assert email.status is EmailStatus.QUEUED
    assert email.to == "client@example.com"
    assert email.message_id == f"<{email_id}@{api.runtime.app.config.mail_domain}>"
    assert email.ref == f"stage:{s.stage}"
    # Stored with a placeholder and a reference to the request (decision 0026); the message
    # the outbox builds carries the link the answer showed.
    assert sent["signing_url"] not in email.text + email.html
    assert email.link_refs() == {
        LinkName.SIGNING_URL: SigningLink(UUID(sent["id"]), UUID(sent["request_id"]))
    }
    built = build_message(email, SENDER, EmailLinks.from_config(api.runtime.app.config))
    assert sent["signing_url"] in built.data.decode("ascii").replace("=\r\n", "")
    assert "spec.pdf" in email.text
    assert "Vendor slips" in email.text
    assert "<script>" not in email.html
    assert HOSTILE in email.text  # the text part is plain text: raw, never markup
    assert len(email.subject) <= 300
    assert "\n" not in email.subject

    # One atomic save: stage, round, link, package record, email and the project's daily
    # package count (the project's and the org's) at once.
    rows = api.rows_after(before)
    assert len({r.notification_id for r in rows}) == len(rows)
    topics = [r.topic.rpartition(":")[2] for r in rows]
    assert topics == [
        "Stage.SignOffRequested",
        "SignOff.Created",
        "SignOff.ExternalSignerRequested",
        "SignOff.PackageSent",
        "Email.Queued",
        "PackageQuota.Opened",
        "PackageQuota.Counted",
        "OrgPackageQuota.Opened",
        "OrgPackageQuota.Counted",
    ]
    (package_sent,) = [e for e in api.events_of(signoff.id) if isinstance(e, SignOff.PackageSent)]
    assert package_sent.request_id == UUID(sent["request_id"])
    assert package_sent.recipient == "client@example.com"
    assert package_sent.email_id == email_id
    assert package_sent.document_ids == [str(d) for d in s.docs]
    assert package_sent.raid_item_ids == [str(i) for i in (s.decision, s.risk, s.action)]

    # The link works for the recipient: the round is theirs to sign.
    view = api.client.get("/api/public/signing", headers={"X-Signing-Token": token})
    assert view.status_code == 200, view.text


def test_send_on_an_open_round_adds_the_link_to_it(api: Api) -> None:
    s = _setup(api)
    round_id = api.request_signoff(s.project, s.stage, by=s.owner, org=s.org, signers=[s.owner])
    response = api.client.post(s.url("send"), json=s.body(recipient="c@example.com"), headers=s.h)
    assert response.status_code == 201, response.text
    assert response.json()["id"] == str(round_id)
    assert response.json()["opened_round"] is False
    signoff: object = api.runtime.app.repository.get(round_id)
    assert isinstance(signoff, SignOff)
    assert signoff.named() == {f"user:{s.owner}", "email:c@example.com"}


def test_a_second_package_withdraws_the_first_email_whose_link_it_revoked(api: Api) -> None:
    s = _setup(api)
    body = s.body(recipient="c@example.com")
    first = api.client.post(s.url("send"), json=body, headers=s.h)
    assert first.status_code == 201, first.text
    other = api.client.post(s.url("send"), json=s.body(recipient="d@example.com"), headers=s.h)
    assert other.status_code == 201, other.text
    second = api.client.post(s.url("send"), json=body, headers=s.h)
    assert second.status_code == 201, second.text
    assert second.json()["email_id"] != first.json()["email_id"]

    def status(response: Any) -> EmailStatus:
        email: object = api.runtime.app.repository.get(UUID(response.json()["email_id"]))
        assert isinstance(email, Email)
        return email.status

    assert status(first) is EmailStatus.CANCELLED
    assert status(other) is EmailStatus.QUEUED
    assert status(second) is EmailStatus.QUEUED
    old = api.client.get("/api/public/signing", headers={"X-Signing-Token": first.json()["token"]})
    assert_problem(old, 410)


def test_a_signed_off_stage_takes_no_package(api: Api) -> None:
    s = _setup(api)
    api.request_signoff(s.project, s.stage, by=s.owner, org=s.org)
    signed = api.client.post(
        f"/api/projects/{s.project}/stages/{s.stage}/signoff/sign", json={}, headers=s.h
    )
    assert signed.status_code == 200, signed.text
    before = api.max_position()
    response = api.client.post(s.url("send"), json=s.body(recipient="c@example.com"), headers=s.h)
    assert_problem(response, 409)
    assert api.max_position() == before


def test_a_retry_with_the_same_idempotency_key_queues_nothing_new(api: Api) -> None:
    s = _setup(api)
    headers = {**s.h, "Idempotency-Key": f"package-{uuid4()}"}
    body = s.body(recipient="c@example.com")
    before = api.max_position()
    first = api.client.post(s.url("send"), json=body, headers=headers)
    assert first.status_code == 201, first.text
    after_first = api.max_position()
    again = api.client.post(s.url("send"), json=body, headers=headers)
    assert again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    # The replay never carries the link: only its hash may be stored.
    assert again.json()["token"] is None
    assert again.json()["signing_url"] is None
    assert again.json()["email_id"] == first.json()["email_id"]
    assert api.max_position() == after_first
    assert len(_emails(api, before)) == 1


def test_the_same_request_run_twice_queues_one_email(api: Api) -> None:
    """The email id comes from the request's correlation id: a second run of the command
    under it (a settle that re-runs) conflicts as a whole and writes nothing."""
    s = _setup(api)
    ctx = user(s.owner, s.org, Role.OWNER, cid=f"idem-{uuid4().hex}")
    request = PackageRequest(stage_id=s.stage, recipient="c@example.com")
    before = api.max_position()
    app = api.runtime.app
    first = app.send_signoff_package(ctx=ctx, project_id=s.project, request=request)
    after_first = api.max_position()
    with pytest.raises(IntegrityError, match=f"{first.email_id} is already recorded"):
        app.send_signoff_package(ctx=ctx, project_id=s.project, request=request)
    assert api.max_position() == after_first
    assert _emails(api, before) == [first.email_id]


def test_the_token_is_nowhere_in_the_feed_or_the_package_record(api: Api) -> None:
    s = _setup(api)
    response = api.client.post(s.url("send"), json=s.body(recipient="c@example.com"), headers=s.h)
    assert response.status_code == 201, response.text
    token = response.json()["token"]
    secret = token.partition(".")[2]
    api.catch_up(AuditProjection())
    with psycopg.connect(api.database_url) as conn:
        feed = conn.execute(
            "SELECT action, details::text FROM audit_events WHERE project_id = %s",
            (s.project,),
        ).fetchall()
        (stored,) = conn.execute(
            "SELECT state FROM teaim_events WHERE originator_id = %s AND topic LIKE %s",
            (UUID(response.json()["id"]), "%SignOff.PackageSent"),
        ).fetchone() or (None,)
    actions = [action for action, _ in feed]
    assert "signoff.package_sent" in actions
    assert "email.queued" in actions
    for action, details in feed:
        assert secret not in details, action
        assert hash_token(token) not in details, action
    assert stored is not None
    assert secret.encode() not in bytes(stored)
    assert hash_token(token).encode() not in bytes(stored)
    (package_row,) = [json.loads(d) for a, d in feed if a == "signoff.package_sent"]
    assert package_row["recipient"] == "c@example.com"
    assert package_row["email_id"] == response.json()["email_id"]
    (email_row,) = [json.loads(d) for a, d in feed if a == "email.queued"]
    assert "text" not in email_row
    assert "html" not in email_row
    # The feed keeps what identifies the email, never its bodies.
    assert email_row["subject"]
    assert email_row["message_id"]
    # Through the API as well.
    listed = api.client.get(
        "/api/audit/list", params={"project_id": str(s.project)}, headers=s.h
    ).text
    assert "signoff.package_sent" in listed
    assert secret not in listed


# ZIP ---------------------------------------------------------------------------------------


def _zip(api: Api, s: Setup, **body: Any) -> zipfile.ZipFile:
    response = api.client.post(s.url("zip"), json=s.body(**body), headers=s.h)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="')
    assert "/" not in disposition
    return zipfile.ZipFile(io.BytesIO(response.content))


def test_zip_holds_readme_manifest_and_the_documents(api: Api) -> None:
    s = _setup(api, docs=[("spec.pdf", PDF_BYTES), ("Spec.PDF", b"x" * 1000), ("../x.txt", b"y")])
    archive = _zip(api, s)
    assert archive.testzip() is None
    names = archive.namelist()
    assert names[:2] == ["README.html", "manifest.json"]
    assert names[2:] == ["documents/spec.pdf", "documents/Spec (2).PDF", "documents/x.txt"]
    readme = archive.read("README.html").decode()
    assert "<script>" not in readme
    assert "Vendor slips" in readme
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["project"]["id"] == str(s.project)
    assert manifest["stage"]["id"] == str(s.stage)
    assert manifest["options"]["document_ids"] == [str(d) for d in s.docs]
    assert manifest["generated_at"] == api.clock.now().isoformat()
    for entry, doc_id in zip(manifest["files"], s.docs, strict=True):
        artifact = api.client.get(f"/api/projects/{s.project}/artifacts/{doc_id}", headers=s.h)
        recorded = artifact.json()
        data = archive.read(entry["path"])
        assert entry["missing"] is False
        assert entry["artifact_id"] == str(doc_id)
        assert entry["name"] == recorded["name"]
        assert entry["size"] == recorded["size"] == len(data)
        assert entry["sha256"] == recorded["sha256"] == hashlib.sha256(data).hexdigest()


def test_a_missing_blob_gets_a_named_placeholder(api: Api) -> None:
    s = _setup(api)
    artifact: object = api.runtime.app.repository.get(s.docs[0])
    assert isinstance(artifact, Artifact)
    api.runtime.blobs.delete(artifact.blob_key)
    archive = _zip(api, s)
    assert "documents/spec.pdf" not in archive.namelist()
    placeholder = archive.read("documents/spec.pdf.MISSING.txt").decode()
    assert str(s.docs[0]) in placeholder
    assert "missing" in placeholder
    files = json.loads(archive.read("manifest.json"))["files"]
    assert [(f["path"], f["missing"]) for f in files] == [
        ("documents/spec.pdf.MISSING.txt", True),
        ("documents/notes.txt", False),
    ]
    assert files[0]["sha256"] == artifact.sha256  # the recorded value, still named


def test_a_large_document_streams_without_being_held_in_memory(api: Api) -> None:
    """24 MiB through a real server (the test client would buffer the answer): the process's
    peak allocation, server and client together, stays a small fraction of the document."""
    size = 24 * MiB
    piece = bytes(range(256)) * 256  # 64 KiB
    data = piece * (size // len(piece))
    s = _setup(api, docs=[("big.bin", data)])
    del data
    body = s.body()
    # Under an Idempotency-Key too: that layer must not buffer the ZIP to keep it as an answer.
    headers = {**s.h, "Idempotency-Key": f"zip-{uuid4()}"}
    runtime, app = _build(api.database_url, api.clock)
    runtime.blobs = api.runtime.blobs
    with serve(app) as server, server.client() as client:
        tracemalloc.start()
        try:
            with client.stream("POST", s.url("zip"), json=body, headers=headers) as response:
                assert response.status_code == 200
                assert "idempotent-replayed" not in response.headers
                total = sum(len(chunk) for chunk in response.iter_bytes())
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert total > size
    assert peak < size / 4, f"peak {peak} bytes for a {size}-byte document"
