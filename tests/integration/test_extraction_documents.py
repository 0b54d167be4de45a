"""DOCX and PDF text layers, and the hostile documents: zip bombs, encrypted, corrupt and
truncated PDFs, too many pages, a polyglot claiming the wrong type."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import filetype
import pypdfium2 as pdfium
import pytest

from adapters.extraction.config import ExtractionLimits
from adapters.extraction.dispatcher import FileExtractor
from application.ingestion_ports import ExtractedText, ExtractionOutcome, ExtractionRefused
from domain.artifact import ExtractionMethod
from tests.support.ocr_tools import extractor
from tests.support.sample_files import (
    SAMPLE_PDF_PASSWORD,
    corrupt_pdf,
    docx_with_text,
    encrypted_pdf,
    many_members_docx,
    polyglot_png_html,
    text_pdf,
    truncated_pdf,
    zip_bomb_docx,
)

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
PDF = "application/pdf"
LONG = "The quarterly harbour report (draft) lists every lantern and meadow we own."


@pytest.fixture(scope="module")
def files() -> Iterator[FileExtractor]:
    subject = extractor()
    yield subject
    subject.close()


def _run(files: FileExtractor, path: Path, data: bytes, mime: str) -> ExtractionOutcome:
    path.write_bytes(data)
    return files.extract(path, mime)


def _refused(outcome: ExtractionOutcome) -> str:
    assert isinstance(outcome, ExtractionRefused), outcome
    return outcome.reason


def test_docx_paragraphs_and_tables_in_order(files: FileExtractor, tmp_path: Path) -> None:
    data = docx_with_text(["First paragraph.", "Second one."], [["Name", "Role"], ["Ada", "PM"]])
    outcome = _run(files, tmp_path / "d.docx", data, DOCX)
    assert outcome == ExtractedText(
        method=ExtractionMethod.DOCX,
        pages=["First paragraph.\nSecond one.\nName | Role\nAda | PM"],
    )


def test_a_docx_inflating_past_the_size_limit_is_a_zip_bomb(
    files: FileExtractor, tmp_path: Path
) -> None:
    data = zip_bomb_docx(inflated_bytes=101 * 1024 * 1024)
    assert len(data) < 1024 * 1024  # tiny on disk
    outcome = _run(files, tmp_path / "bomb.docx", data, DOCX)
    assert _refused(outcome) == "zip_bomb"
    assert isinstance(outcome, ExtractionRefused)
    assert "uncompressed" in outcome.detail


def test_a_docx_member_with_a_huge_ratio_is_a_zip_bomb(tmp_path: Path) -> None:
    # Under the total size, but one member inflates 1000 to 1.
    files = extractor(ExtractionLimits(docx_max_uncompressed_bytes=1024**3))
    try:
        outcome = _run(files, tmp_path / "ratio.docx", zip_bomb_docx(8 * 1024 * 1024), DOCX)
    finally:
        files.close()
    assert _refused(outcome) == "zip_bomb"
    assert isinstance(outcome, ExtractionRefused)
    assert "inflates" in outcome.detail


def test_a_docx_with_too_many_members_is_a_zip_bomb(tmp_path: Path) -> None:
    files = extractor(ExtractionLimits(docx_max_members=50))
    try:
        outcome = _run(files, tmp_path / "many.docx", many_members_docx(60), DOCX)
    finally:
        files.close()
    assert _refused(outcome) == "zip_bomb"


def test_a_zip_that_is_not_a_word_document_is_refused(files: FileExtractor, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "hi")
    assert _refused(_run(files, tmp_path / "z.docx", buffer.getvalue(), DOCX)) == "corrupt_docx"
    assert _refused(_run(files, tmp_path / "y.docx", b"not a zip", DOCX)) == "corrupt_docx"


def test_pdf_text_layer_keeps_its_pages(files: FileExtractor, tmp_path: Path) -> None:
    pages = [f"Page one: {LONG}", f"Page two: {LONG}\nSecond line (two)", f"Page three: {LONG}"]
    outcome = _run(files, tmp_path / "t.pdf", text_pdf(pages), PDF)
    assert isinstance(outcome, ExtractedText)
    assert outcome.method == ExtractionMethod.PDF_TEXT
    assert outcome.pages == pages


def test_an_encrypted_pdf_is_refused_by_name(files: FileExtractor, tmp_path: Path) -> None:
    data = encrypted_pdf([LONG])
    # Really encrypted: with the password it opens and reads.
    document = pdfium.PdfDocument(data, password=SAMPLE_PDF_PASSWORD)
    assert document[0].get_textpage().get_text_bounded() == LONG
    document.close()
    assert _refused(_run(files, tmp_path / "e.pdf", data, PDF)) == "encrypted_pdf"


@pytest.mark.parametrize(
    "data", [corrupt_pdf(), truncated_pdf([LONG] * 3)], ids=["garbage", "truncated"]
)
def test_a_corrupt_pdf_is_refused_by_name(
    files: FileExtractor, tmp_path: Path, data: bytes
) -> None:
    assert _refused(_run(files, tmp_path / "c.pdf", data, PDF)) == "corrupt_pdf"


def test_a_pdf_over_the_page_cap_is_refused_before_reading(tmp_path: Path) -> None:
    files = extractor(ExtractionLimits(max_pages=2))
    try:
        outcome = _run(files, tmp_path / "long.pdf", text_pdf([LONG] * 3), PDF)
    finally:
        files.close()
    assert _refused(outcome) == "too_many_pages"


def test_a_polyglot_is_handled_as_what_its_bytes_are(files: FileExtractor, tmp_path: Path) -> None:
    # Named .html and full of markup, but its bytes start as a PNG: the sniffer says PNG, and
    # the image extractor refuses it by name (no HTML parser ever sees it).
    data = polyglot_png_html()
    assert filetype.guess_mime(data) == "image/png"
    outcome = _run(files, tmp_path / "evil.html", data, "image/png")
    assert _refused(outcome) == "corrupt_image"


def test_pdf_bytes_named_as_text_are_read_as_pdf_when_sniffed_so(
    files: FileExtractor, tmp_path: Path
) -> None:
    data = corrupt_pdf()
    assert filetype.guess_mime(data) == PDF
    assert _refused(_run(files, tmp_path / "notes.txt", data, PDF)) == "corrupt_pdf"
