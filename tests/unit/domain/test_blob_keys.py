"""Blob keys and safe file names: no client-chosen name leaves its org/project prefix."""

from __future__ import annotations

import unicodedata
from uuid import UUID, uuid4

from hypothesis import example, given
from hypothesis import strategies as st

from domain.blob_keys import MAX_SAFE_NAME_BYTES, blob_key, blob_prefix, safe_file_name

ORG = UUID("00000000-0000-4000-8000-000000000001")
PROJECT = UUID("00000000-0000-4000-8000-000000000002")

HOSTILE = [
    "../../x",
    "..",
    ".",
    "",
    "/etc/passwd",
    "C:\\Windows\\system32\\cmd.exe",
    "a\0b.pdf",
    "invoice\u202efdp.exe",
    "\u202e\u2066",
    "x" * 10_000,
    "é" * 10_000 + ".pdf",
    ".hidden",
    "..\\..\\..\\boot.ini",
    "line\nbreak\r.txt",
]


def _no_bad_chars(name: str) -> None:
    assert name
    assert "/" not in name
    assert "\\" not in name
    assert "\0" not in name
    assert not any(unicodedata.category(c).startswith("C") for c in name)
    assert len(name.encode()) <= MAX_SAFE_NAME_BYTES
    assert not name.startswith(".")
    assert unicodedata.normalize("NFC", name) == name


@given(st.text(max_size=2000))
@example("../../x")
@example("\u202e" * 300)
@example("é" * 10_000 + ".pdf")
def test_any_name_becomes_a_safe_one(name: str) -> None:
    _no_bad_chars(safe_file_name(name))


@given(st.text(max_size=500), st.uuids(), st.uuids(), st.uuids())
def test_a_key_stays_under_its_prefix(name: str, org: UUID, project: UUID, blob: UUID) -> None:
    key = blob_key(org, project, blob, name)
    prefix = blob_prefix(org, project)
    assert key.startswith(f"{prefix}{blob}__")
    rest = key.removeprefix(prefix)
    assert "/" not in rest
    assert key.split("/") == ["org", str(org), "project", str(project), rest]
    assert ".." not in key.split("/")


def test_hostile_names_are_tamed() -> None:
    for name in HOSTILE:
        _no_bad_chars(safe_file_name(name))
        assert blob_key(ORG, PROJECT, uuid4(), name).startswith(blob_prefix(ORG, PROJECT))


def test_ordinary_names_survive() -> None:
    assert safe_file_name("Quarterly report.pdf") == "Quarterly report.pdf"
    assert safe_file_name("C:\\Users\\ann\\notes.docx") == "notes.docx"
    assert safe_file_name("../../etc/passwd") == "passwd"
    assert safe_file_name("e\u0301te\u0301.txt") == "été.txt"  # NFC
    assert safe_file_name("invoice\u202efdp.exe") == "invoicefdp.exe"
    assert safe_file_name("...") == "file"


def test_a_long_name_keeps_its_extension() -> None:
    name = safe_file_name("a" * 500 + ".pdf")
    assert name.endswith(".pdf")
    assert len(name.encode()) == MAX_SAFE_NAME_BYTES
