"""Sniffing: binary signatures win, text types by content (the name only among text types),
DOCX told from zip by its central directory, polyglots refused; claims compared fairly."""

from __future__ import annotations

import io
import zipfile

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.content_type import (
    DOCX,
    HEAD_BYTES,
    TAIL_BYTES,
    PolyglotError,
    SniffWindow,
    sniff,
)
from domain.mime import mime_mismatch

PNG = b"\x89PNG\r\n\x1a\n" + b"\0\0\0\rIHDR" + b"\0" * 50
JPEG = b"\xff\xd8\xff\xe0\0\x10JFIF\0" + b"\0" * 50
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n"


def _zip(*names: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, "x")
    return buffer.getvalue()


def kind(data: bytes, name: str = "file", claimed: str | None = None) -> str:
    return sniff(data[:HEAD_BYTES], data[-TAIL_BYTES:], name=name, claimed=claimed).mime


@pytest.mark.parametrize(
    ("data", "name", "expected"),
    [
        (PNG, "x.pdf", "image/png"),
        (JPEG, "x.txt", "image/jpeg"),
        (PDF, "x.png", "application/pdf"),
        (_zip("[Content_Types].xml", "word/document.xml"), "x.zip", DOCX),
        (_zip("word/document.xml"), "x.docx", "application/zip"),
        (_zip("xl/workbook.xml", "[Content_Types].xml"), "x.docx", "application/zip"),
        (b"WEBVTT\n\n00:00.000 --> 00:01.000\nhi\n", "x.txt", "text/vtt"),
        (b"1\r\n00:00:01,000 --> 00:00:02,000\r\nhi\r\n", "x.txt", "application/x-subrip"),
        (b"  <!DOCTYPE html><html><body>x</body></html>", "x.txt", "text/html"),
        (b"<!-- c --><html lang=en>", "x.md", "text/html"),
        (b"a,b,c\n1,2,3\n4,5,6\n", "x.csv", "text/csv"),
        (b"a,b,c\n1,2,3\n4,5,6\n", "x.txt", "text/plain"),
        (b"# Title\n\nsome *markdown*\n", "README.md", "text/markdown"),
        (b"# Title\n", "x.pdf", "text/plain"),  # the name never makes text binary
        ("Grüße\n".encode(), "x.txt", "text/plain"),
        (b"\xef\xbb\xbfwith a BOM", "x.txt", "text/plain"),
        ("UTF-16 text".encode("utf-16"), "x.txt", "text/plain"),
        (b"\x00\x01\x02binary", "x.txt", "application/octet-stream"),
        (b"\xff\xfe\xfd not utf-8", "x.txt", "application/octet-stream"),
        (b"", "empty.txt", "text/plain"),
    ],
)
def test_the_bytes_decide_the_type(data: bytes, name: str, expected: str) -> None:
    assert kind(data, name) == expected


def test_a_multibyte_character_cut_by_the_head_window_is_still_text() -> None:
    data = b"a" * (HEAD_BYTES - 1) + "é".encode() * 10
    assert kind(data, "x.txt") == "text/plain"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (PNG + _zip("[Content_Types].xml", "word/document.xml"), "polyglot_zip"),
        (b"GIF89a" + b"\0" * 100 + PDF, "polyglot_pdf"),
        (b"<html>" + b" " * 10 + PDF, "polyglot_pdf"),
        (JPEG + b"<script>alert(1)</script>", "polyglot_markup"),
        (PDF + b"<svg onload=alert(1)>", "polyglot_markup"),
    ],
)
def test_a_file_valid_as_two_formats_is_refused(data: bytes, code: str) -> None:
    with pytest.raises(PolyglotError) as refused:
        kind(data, "x")
    assert refused.value.code == code


def test_a_claim_is_recorded_and_compared() -> None:
    found = sniff(PDF, PDF, name="x.pdf", claimed="Application/PDF; charset=binary")
    assert (found.claimed_mime, found.mismatch) == ("application/pdf", False)
    wrong = sniff(PDF, PDF, name="x.png", claimed="image/png")
    assert (wrong.mime, wrong.claimed_mime, wrong.mismatch) == (
        "application/pdf",
        "image/png",
        True,
    )
    assert sniff(PDF, PDF, name="x", claimed=None).mismatch is False


@pytest.mark.parametrize(
    ("claimed", "sniffed", "mismatch"),
    [
        (None, "text/plain", False),
        ("application/octet-stream", "application/pdf", False),
        ("image/jpg", "image/jpeg", False),
        ("text/plain", "text/csv", False),
        ("text/x-markdown", "text/markdown", False),
        ("text/plain", "text/html", True),
        ("image/png", "text/html", True),
        ("garbage", "text/plain", False),
    ],
)
def test_which_claims_are_mismatches(claimed: str | None, sniffed: str, mismatch: bool) -> None:
    assert mime_mismatch(claimed, sniffed) is mismatch


@given(st.lists(st.binary(max_size=40_000), max_size=12))
def test_the_window_keeps_exactly_the_head_and_the_tail(chunks: list[bytes]) -> None:
    window = SniffWindow()
    for chunk in chunks:
        window.feed(chunk)
    whole = b"".join(chunks)
    assert bytes(window.head) == whole[:HEAD_BYTES]
    assert window.tail == whole[-TAIL_BYTES:]


@given(st.binary(max_size=3000), st.text(max_size=30), st.none() | st.text(max_size=60))
def test_sniffing_any_bytes_answers_a_type_or_names_a_polyglot(
    data: bytes, name: str, claimed: str | None
) -> None:
    code = "none"
    try:
        found = sniff(data[:HEAD_BYTES], data[-TAIL_BYTES:], name=name, claimed=claimed)
    except PolyglotError as refused:
        code = refused.code
    else:
        assert "/" in found.mime
    assert code == "none" or code.startswith("polyglot_")
