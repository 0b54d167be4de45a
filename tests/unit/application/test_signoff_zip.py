"""The sign-off ZIP's plan and stream over an in-memory blob store (pure logic, no database)."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import UTC, datetime
from uuid import uuid4

from hypothesis import given
from hypothesis import strategies as st

from application.signoff_package import Package, PackageDocument
from application.signoff_zip import plan_zip, unique_names, zip_stream
from tests.support.memory_blobs import MemoryBlobs


def _document(blobs: MemoryBlobs, name: str, data: bytes | None) -> PackageDocument:
    key = f"k/{uuid4()}"
    if data is not None:
        blobs.put(key, [data], max_bytes=1 << 20)
    content = data or b""
    return PackageDocument(
        id=uuid4(),
        name=name,
        mime="application/octet-stream",
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        blob_key=key,
        has_content=True,
    )


def _package(documents: list[PackageDocument]) -> Package:
    return Package(
        project_id=uuid4(),
        project_code="P-1",
        project_name="Project",
        stage_id=uuid4(),
        stage_title="Design",
        stage_state="draft",
        message="hello",
        recipient=None,
        documents=tuple(documents),
        items=(),
        generated_at=datetime(2030, 1, 7, 9, 0, tzinfo=UTC),
    )


_names = st.lists(
    st.text(alphabet=st.sampled_from("aA./\\ .:\x00\u202e\u00e9x-_"), max_size=12), max_size=12
)


@given(_names)
def test_entry_names_are_safe_and_unique_whatever_the_documents_are_called(
    names: list[str],
) -> None:
    safe = unique_names(names)
    assert len(safe) == len(names)
    assert len({n.casefold() for n in safe}) == len(safe)
    for name in safe:
        assert name
        assert "/" not in name
        assert "\\" not in name
        assert "\x00" not in name
        assert not name.startswith(".")


def test_the_archive_holds_each_document_or_a_named_placeholder() -> None:
    blobs = MemoryBlobs()
    present = _document(blobs, "report.pdf", b"%PDF-1.4 bytes" * 100)
    empty = _document(blobs, "empty.txt", b"")
    gone = _document(blobs, "report.pdf", None)  # same name, and its blob is missing
    plan = plan_zip(uuid4(), _package([present, empty, gone]), blobs.exists)
    archive = zipfile.ZipFile(io.BytesIO(b"".join(zip_stream(plan, blobs))))
    assert archive.testzip() is None
    assert archive.namelist() == [
        "README.html",
        "manifest.json",
        "documents/report.pdf",
        "documents/empty.txt",
        "documents/report (2).pdf.MISSING.txt",
    ]
    assert archive.read("documents/report.pdf") == b"%PDF-1.4 bytes" * 100
    assert archive.read("documents/empty.txt") == b""
    assert str(gone.id) in archive.read("documents/report (2).pdf.MISSING.txt").decode()
    manifest = json.loads(archive.read("manifest.json"))
    assert [f["missing"] for f in manifest["files"]] == [False, False, True]
    assert [f["sha256"] for f in manifest["files"]] == [d.sha256 for d in (present, empty, gone)]
    assert manifest["generated_at"] == "2030-01-07T09:00:00+00:00"
