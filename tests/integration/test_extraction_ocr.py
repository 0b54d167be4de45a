"""Real OCR: Tesseract reads rendered words from images and from an image-only PDF, page by
page; the guards hold before decoding; missing, failing, hanging or empty OCR gives OcrNeeded
with its reason. Tesseract and Poppler must be installed (`teaim setup`): missing, these fail."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.extraction.config import ExtractionLimits
from adapters.extraction.dispatcher import FileExtractor
from application.ingestion_ports import (
    ExtractedText,
    ExtractionOutcome,
    ExtractionRefused,
    OcrNeeded,
)
from domain.artifact import ExtractionMethod
from tests.support.ocr_tools import extractor, ocr_tools, stand_in_tesseract
from tests.support.sample_files import (
    OCR_WORDS,
    bomb_png,
    image_of_text,
    image_only_pdf,
    multipage_tiff,
    png_of_text,
    rendered_page,
    text_pdf,
)

__all__ = ["ocr_tools"]  # the fixture, imported to be used by name

PDF = "application/pdf"
FIRST, SECOND, THIRD = (" ".join(OCR_WORDS[i : i + 2]) for i in (0, 2, 4))


@pytest.fixture(scope="module")
def files() -> Iterator[FileExtractor]:
    subject = extractor()
    yield subject
    subject.close()


def _run(files: FileExtractor, path: Path, data: bytes, mime: str) -> ExtractionOutcome:
    path.write_bytes(data)
    return files.extract(path, mime)


def _words(text: str) -> set[str]:
    return set(text.lower().split())


@pytest.mark.usefixtures("ocr_tools")
@pytest.mark.parametrize(
    ("format_name", "mime"),
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("TIFF", "image/tiff"), ("WEBP", "image/webp")],
)
def test_tesseract_reads_the_words_of_an_image(
    files: FileExtractor, tmp_path: Path, format_name: str, mime: str
) -> None:
    outcome = _run(files, tmp_path / "scan", image_of_text([FIRST, SECOND], format_name), mime)
    assert isinstance(outcome, ExtractedText), outcome
    assert outcome.method == ExtractionMethod.OCR_IMAGE
    assert _words(FIRST) | _words(SECOND) <= _words(outcome.pages[0])


@pytest.mark.usefixtures("ocr_tools")
def test_each_tiff_frame_is_a_page(files: FileExtractor, tmp_path: Path) -> None:
    outcome = _run(files, tmp_path / "t.tiff", multipage_tiff([[FIRST], [SECOND]]), "image/tiff")
    assert isinstance(outcome, ExtractedText), outcome
    assert [_words(page) for page in outcome.pages] == [_words(FIRST), _words(SECOND)]


@pytest.mark.usefixtures("ocr_tools")
def test_an_image_only_pdf_is_ocrd_page_by_page(files: FileExtractor, tmp_path: Path) -> None:
    data = image_only_pdf([[FIRST], [SECOND], [THIRD]])
    outcome = _run(files, tmp_path / "scan.pdf", data, PDF)
    assert isinstance(outcome, ExtractedText), outcome
    assert outcome.method == ExtractionMethod.OCR_PDF
    assert [_words(page) for page in outcome.pages] == [
        _words(FIRST),
        _words(SECOND),
        _words(THIRD),
    ]


@pytest.mark.usefixtures("ocr_tools")
def test_a_page_over_the_pixel_cap_is_rendered_smaller_not_refused(tmp_path: Path) -> None:
    # A4 at 300 dpi is 8.7 million pixels: under a 5 million cap the page renders at ~225 dpi.
    files = extractor(ExtractionLimits(max_image_pixels=5_000_000))
    try:
        outcome = _run(files, tmp_path / "scan.pdf", image_only_pdf([[FIRST]]), PDF)
    finally:
        files.close()
    assert isinstance(outcome, ExtractedText), outcome
    assert _words(outcome.pages[0]) == _words(FIRST)


@pytest.mark.usefixtures("ocr_tools")
def test_a_blank_image_needs_a_person(files: FileExtractor, tmp_path: Path) -> None:
    outcome = _run(files, tmp_path / "blank.png", png_of_text([]), "image/png")
    assert isinstance(outcome, OcrNeeded), outcome
    assert outcome.reason == "ocr_empty"


# Guards: decided from the header, before any decoding ------------------------------------


def test_a_decompression_bomb_png_is_refused_from_its_header(
    files: FileExtractor, tmp_path: Path
) -> None:
    data = bomb_png(100_000, 100_000)
    assert len(data) < 1024
    outcome = _run(files, tmp_path / "bomb.png", data, "image/png")
    assert isinstance(outcome, ExtractionRefused), outcome
    assert outcome.reason == "too_many_pixels"


def test_an_image_just_over_the_cap_is_refused_where_pillow_only_warns(tmp_path: Path) -> None:
    # Pillow raises only beyond twice its limit; 1.5 times the cap must be refused too.
    files = extractor(ExtractionLimits(max_image_pixels=1_000_000))
    path = tmp_path / "big.png"
    rendered_page([FIRST], size=(1500, 1000)).save(path)
    try:
        outcome = files.extract(path, "image/png")
    finally:
        files.close()
    assert isinstance(outcome, ExtractionRefused), outcome
    assert outcome.reason == "too_many_pixels"
    assert "1000000 pixels" in outcome.detail


def test_a_tiff_with_too_many_frames_is_refused(tmp_path: Path) -> None:
    files = extractor(ExtractionLimits(max_pages=2))
    try:
        outcome = _run(files, tmp_path / "t.tiff", multipage_tiff([[FIRST]] * 3), "image/tiff")
    finally:
        files.close()
    assert isinstance(outcome, ExtractionRefused), outcome
    assert outcome.reason == "too_many_pages"


@pytest.mark.usefixtures("ocr_tools")
def test_a_bomb_past_the_header_check_ends_in_the_child_not_here(tmp_path: Path) -> None:
    # The pixel cap lifted: Tesseract, under the child's 256 MiB address space, cannot decode
    # 100000 x 100000 pixels. The outcome is named; this process is untouched.
    files = extractor(
        ExtractionLimits(max_image_pixels=10**11), memory_limit_mb=256, page_timeout_seconds=60
    )
    try:
        outcome = _run(files, tmp_path / "bomb.png", bomb_png(100_000, 100_000), "image/png")
    finally:
        files.close()
    assert not isinstance(outcome, ExtractedText), outcome
    assert outcome.reason in {"ocr_failed", "ocr_empty", "memory_limit", "worker_crashed"}


# Graceful fallback: OCR missing, failing, hanging -----------------------------------------


def test_hidden_tesseract_sends_an_image_to_a_person(tmp_path: Path) -> None:
    files = extractor(tesseract_cmd=str(tmp_path / "no-such-tesseract"))
    try:
        outcome = _run(files, tmp_path / "p.png", png_of_text([FIRST]), "image/png")
    finally:
        files.close()
    assert isinstance(outcome, OcrNeeded), outcome
    assert outcome.reason == "tesseract_missing"


def test_hidden_tesseract_sends_a_scanned_pdf_to_a_person(tmp_path: Path) -> None:
    files = extractor(tesseract_cmd=str(tmp_path / "no-such-tesseract"))
    try:
        outcome = _run(files, tmp_path / "s.pdf", image_only_pdf([[FIRST], [SECOND]]), PDF)
    finally:
        files.close()
    assert outcome == OcrNeeded(
        "tesseract_missing",
        f"Tesseract not found ({str(tmp_path / 'no-such-tesseract')!r}): run `teaim setup` or"
        " set TESSERACT_CMD",
        page_count=2,
    )


@pytest.mark.parametrize("text", ["x" * 80, "Short note."], ids=["text", "short-text"])
def test_hidden_tesseract_does_not_stop_a_pdf_with_text(tmp_path: Path, text: str) -> None:
    # A short text layer looks like a scan (under 50 characters a page) but is still text.
    files = extractor(tesseract_cmd=str(tmp_path / "no-such-tesseract"))
    try:
        outcome = _run(files, tmp_path / "t.pdf", text_pdf([text]), PDF)
    finally:
        files.close()
    assert outcome == ExtractedText(method=ExtractionMethod.PDF_TEXT, pages=[text])


@pytest.mark.usefixtures("ocr_tools")
def test_hidden_poppler_sends_a_scanned_pdf_to_a_person(tmp_path: Path) -> None:
    empty = tmp_path / "no-poppler-here"
    empty.mkdir()
    files = extractor(poppler_path=empty)
    try:
        outcome = _run(files, tmp_path / "s.pdf", image_only_pdf([[FIRST]]), PDF)
    finally:
        files.close()
    assert isinstance(outcome, OcrNeeded), outcome
    assert outcome.reason == "poppler_missing"
    assert outcome.page_count == 1


def test_a_failing_tesseract_is_ocr_failed(tmp_path: Path) -> None:
    files = extractor(tesseract_cmd=str(stand_in_tesseract(tmp_path, "fail")))
    try:
        outcome = _run(files, tmp_path / "p.png", png_of_text([FIRST]), "image/png")
    finally:
        files.close()
    assert isinstance(outcome, OcrNeeded), outcome
    assert outcome.reason == "ocr_failed"
    assert "Unknown format" in outcome.detail


def test_a_page_past_its_timeout_is_ocr_timeout(tmp_path: Path) -> None:
    hanging = stand_in_tesseract(tmp_path, "hang")
    files = extractor(tesseract_cmd=str(hanging), page_timeout_seconds=1)
    try:
        outcome = _run(files, tmp_path / "p.png", png_of_text([FIRST]), "image/png")
    finally:
        files.close()
    assert isinstance(outcome, OcrNeeded), outcome
    assert outcome.reason == "ocr_timeout"
    assert "page 1" in outcome.detail


def test_the_watchdog_kills_the_child_and_what_it_started(tmp_path: Path) -> None:
    # The page timeout is long; the document's is not: the child and the hanging "tesseract"
    # it started are killed together.
    hanging = stand_in_tesseract(tmp_path, "hang")
    files = extractor(
        tesseract_cmd=str(hanging), page_timeout_seconds=600, document_timeout_seconds=2
    )
    try:
        outcome = _run(files, tmp_path / "p.png", png_of_text([FIRST]), "image/png")
    finally:
        files.close()
    assert isinstance(outcome, OcrNeeded), outcome
    assert outcome.reason == "ocr_timeout"
    assert "extraction took longer" in outcome.detail
    pid = int((tmp_path / "pid").read_text())
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead: it only waits for its parent (init, here) to reap it.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ", 1)[1][0] != "Z"
