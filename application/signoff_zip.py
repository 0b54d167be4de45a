"""The sign-off package as a streamed ZIP: README.html, manifest.json, then the documents.

Everything the archive says is decided before its first byte (`plan_zip`): the package, each
document's recorded size and SHA-256, and whether its blob exists. Streaming then only reads
blobs, chunk by chunk, through the `BlobStore` port (zipstream-ng writes each entry as its
chunks come, with a data descriptor, so no document is ever held whole: `sized=False`; a sized
stream would read an iterable added without `size=` whole into memory). A document whose blob
is missing becomes `documents/<name>.MISSING.txt` and `missing: true` in the manifest, never a
silent gap. A blob that vanishes after the plan can only cut the stream (the headers are out).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from uuid import UUID

from zipstream import ZIP_DEFLATED, ZIP_STORED, ZipStream

from application.ports import BlobStore
from application.signoff_package import Package, PackageDocument
from domain.blob_keys import safe_file_name

log = logging.getLogger(__name__)

README = "README.html"
MANIFEST = "manifest.json"
FOLDER = "documents"
MISSING_SUFFIX = ".MISSING.txt"


@dataclass(frozen=True, slots=True)
class ZipEntry:
    """One selected document's place in the archive."""

    document: PackageDocument
    path: str
    missing: bool


@dataclass(frozen=True, slots=True)
class ZipPlan:
    """Everything the archive will hold, resolved before streaming starts."""

    org_id: UUID
    package: Package
    readme: str
    manifest: bytes
    entries: tuple[ZipEntry, ...]


def unique_names(names: list[str]) -> list[str]:
    """Safe file names (no path, control characters or leading dots), made unique without
    regard to case (`a.pdf`, `a (2).pdf`, ...), so no entry hides another when unpacked."""
    taken: set[str] = set()
    result: list[str] = []
    for raw in names:
        name = safe_file_name(raw)
        stem, dot, ext = name.rpartition(".")
        if not dot or not stem:
            stem, ext = name, ""
        candidate, n = name, 1
        while candidate.casefold() in taken:
            n += 1
            candidate = f"{stem} ({n}).{ext}" if ext else f"{stem} ({n})"
        taken.add(candidate.casefold())
        result.append(candidate)
    return result


def plan_zip(org_id: UUID, package: Package, exists: Callable[[str], bool]) -> ZipPlan:
    """Decide the archive: names, which blobs are missing, README.html and manifest.json."""
    names = unique_names([d.name for d in package.documents])
    entries = []
    for document, name in zip(package.documents, names, strict=True):
        missing = not document.has_content or not exists(document.blob_key)
        path = f"{FOLDER}/{name}{MISSING_SUFFIX}" if missing else f"{FOLDER}/{name}"
        entries.append(ZipEntry(document=document, path=path, missing=missing))
    manifest = {
        "project": {
            "id": str(package.project_id),
            "code": package.project_code,
            "name": package.project_name,
        },
        "stage": {
            "id": str(package.stage_id),
            "title": package.stage_title,
            "state": package.stage_state,
        },
        "options": {
            "message": package.message,
            "recipient": package.recipient,
            "document_ids": [str(d.id) for d in package.documents],
            "raid_item_ids": [str(i.id) for i in package.items],
        },
        "generated_at": package.generated_at.isoformat(),
        "files": [
            {
                "artifact_id": str(e.document.id),
                "name": e.document.name,
                "path": e.path,
                "mime": e.document.mime,
                # The values recorded when the bytes were stored (the blob store measured them).
                "size": e.document.size,
                "sha256": e.document.sha256,
                "missing": e.missing,
            }
            for e in entries
        ],
    }
    return ZipPlan(
        org_id=org_id,
        package=package,
        readme=package.html(),
        manifest=json.dumps(manifest, ensure_ascii=False, indent=2).encode("utf-8"),
        entries=tuple(entries),
    )


def zip_stream(plan: ZipPlan, blobs: BlobStore) -> ZipStream:
    """The archive as a lazy stream: iterate it to get the bytes (blobs are opened then)."""
    archive = ZipStream(compress_type=ZIP_DEFLATED, sized=False)
    archive.add(plan.readme.encode("utf-8"), README)
    archive.add(plan.manifest, MANIFEST)
    for entry in plan.entries:
        if entry.missing:
            note = (
                f"The stored bytes of document {entry.document.name!r} "
                f"(artifact {entry.document.id}) are missing: blob missing for artifact "
                f"{entry.document.id}.\n"
            )
            archive.add(note.encode("utf-8"), entry.path)
        elif entry.document.size == 0:
            archive.add(b"", entry.path, compress_type=ZIP_STORED)
        else:
            # Documents go in as they are (PDF and DOCX are compressed already).
            archive.add(
                _blob_chunks(blobs, entry, plan.org_id), entry.path, compress_type=ZIP_STORED
            )
    return archive


def _blob_chunks(blobs: BlobStore, entry: ZipEntry, org_id: UUID) -> Iterator[bytes]:
    # A generator: the blob is opened only when the archive reaches this entry.
    try:
        yield from blobs.open_range(entry.document.blob_key)
    except Exception:
        log.exception(
            "signoff package: blob of artifact %s vanished while streaming (org %s)",
            entry.document.id,
            org_id,
        )
        raise
