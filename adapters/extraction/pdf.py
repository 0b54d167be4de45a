"""PDF: the text layer by PDFium (pypdfium2), page by page; scans go to OCR page by page.

A PDF whose text layer has fewer than `scanned_chars_per_page` non-whitespace characters per
page on average is a scan. Its pages are rasterised one at a time by pdftoppm (pdf2image) at
a resolution that keeps each page under the pixel cap, and OCR'd one at a time, each step under
the page timeout. A page whose own text layer is rich enough keeps it (mixed documents).
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pypdfium2 as pdfium
from pdf2image import convert_from_path
from pdf2image.exceptions import (
    PDFInfoNotInstalledError,
    PDFPageCountError,
    PDFPopplerTimeoutError,
    PDFSyntaxError,
    PopplerNotInstalledError,
)

from adapters.extraction.config import ExtractionLimits, OcrOptions
from adapters.extraction.tesseract import OcrFailedError, ocr_file, tesseract_missing
from application.ingestion_ports import ExtractedText, ExtractionRefused, OcrNeeded
from domain.artifact import ExtractionMethod

# PDFium's load errors (fpdfview.h FPDF_ERR_*).
_ERR_PASSWORD = 4
_ERR_SECURITY = 5
# Below this, a page rendered small enough for the pixel cap is unreadable to Tesseract.
_MIN_DPI = 70


@dataclass(frozen=True, slots=True)
class _Page:
    text: str
    width_pt: float
    height_pt: float

    @property
    def chars(self) -> int:
        return sum(not c.isspace() for c in self.text)


def extract_pdf(
    path: Path, limits: ExtractionLimits, ocr: OcrOptions
) -> ExtractedText | OcrNeeded | ExtractionRefused:
    """The text layer's pages, or the pages OCR reads when the PDF is a scan."""
    pages = _text_layer(path, limits)
    if not isinstance(pages, list):
        return pages
    total = sum(page.chars for page in pages)
    if total >= ocr.scanned_chars_per_page * len(pages):
        return ExtractedText(method=ExtractionMethod.PDF_TEXT, pages=[p.text for p in pages])
    return _ocr_pages(path, pages, limits, ocr)


def _text_layer(path: Path, limits: ExtractionLimits) -> list[_Page] | ExtractionRefused:
    try:
        document = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as error:
        if error.err_code in (_ERR_PASSWORD, _ERR_SECURITY):
            return ExtractionRefused("encrypted_pdf", "the PDF is encrypted with a password")
        return ExtractionRefused("corrupt_pdf", f"unreadable PDF: {error}"[:200])
    try:
        count = len(document)
        if count == 0:
            return ExtractionRefused("corrupt_pdf", "the PDF has no pages")
        if count > limits.max_pages:
            return ExtractionRefused("too_many_pages", f"{count} pages (limit {limits.max_pages})")
        pages: list[_Page] = []
        room = limits.max_text_chars
        for index in range(count):
            page = document[index]
            try:
                width, height = page.get_size()
                textpage = page.get_textpage()
                try:
                    # Past the text the artifact keeps, pages still count (for page numbers).
                    text = textpage.get_text_bounded() if room > 0 else ""
                finally:
                    textpage.close()
            finally:
                page.close()
            text = text.replace("\r\n", "\n").replace("\r", "\n")
            room -= len(text)
            pages.append(_Page(text=text, width_pt=width, height_pt=height))
    except pdfium.PdfiumError as error:
        return ExtractionRefused("corrupt_pdf", f"unreadable PDF page: {error}"[:200])
    finally:
        document.close()
    return pages


def _poppler_missing(ocr: OcrOptions) -> OcrNeeded | None:
    where = None if ocr.poppler_path is None else str(ocr.poppler_path)
    if shutil.which("pdftoppm", path=where) is None or shutil.which("pdfinfo", path=where) is None:
        return OcrNeeded(
            "poppler_missing",
            "Poppler (pdftoppm, pdfinfo) not found: run `teaim setup` or set POPPLER_PATH",
        )
    return None


def _ocr_pages(
    path: Path, pages: list[_Page], limits: ExtractionLimits, ocr: OcrOptions
) -> ExtractedText | OcrNeeded | ExtractionRefused:
    # A short text layer (a one-line note) is still text: without OCR, or when OCR reads
    # nothing, it is what the document says; only a document with no text at all needs a person.
    layer = ExtractedText(method=ExtractionMethod.PDF_TEXT, pages=[p.text for p in pages])
    has_layer = any(page.chars for page in pages)
    missing = tesseract_missing(ocr) or _poppler_missing(ocr)
    if missing is not None:
        return layer if has_layer else OcrNeeded(missing.reason, missing.detail, len(pages))
    texts: list[str] = []
    with tempfile.TemporaryDirectory(prefix="teaim-ocr-") as tmp:
        for number, page in enumerate(pages, start=1):
            if page.chars >= ocr.scanned_chars_per_page:
                texts.append(page.text)
                continue
            dpi = _dpi_under_cap(page, ocr.dpi, limits.max_image_pixels)
            if dpi is None:
                return ExtractionRefused(
                    "too_many_pixels",
                    f"page {number} ({page.width_pt:.0f}x{page.height_pt:.0f} pt) is too large"
                    f" to render under {limits.max_image_pixels} pixels",
                )
            try:
                image = _rasterise(path, number, dpi, Path(tmp), ocr)
                texts.append(ocr_file(image, ocr, page=number))
                image.unlink()
            except OcrFailedError as failed:
                return OcrNeeded(failed.need.reason, failed.need.detail, page_count=len(pages))
    if not any(text.strip() for text in texts):
        if has_layer:
            return layer
        return OcrNeeded("ocr_empty", "OCR found no text in the PDF", page_count=len(pages))
    return ExtractedText(method=ExtractionMethod.OCR_PDF, pages=texts)


def _dpi_under_cap(page: _Page, dpi: int, max_pixels: int) -> int | None:
    """`dpi`, lowered so the rendered page stays under `max_pixels`; None below _MIN_DPI."""
    area_in2 = max(page.width_pt, 1.0) * max(page.height_pt, 1.0) / 72**2
    if area_in2 * dpi**2 <= max_pixels:
        return dpi
    fitting = math.floor(math.sqrt(max_pixels / area_in2))
    return fitting if fitting >= _MIN_DPI else None


def _rasterise(path: Path, number: int, dpi: int, folder: Path, ocr: OcrOptions) -> Path:
    """Page `number` (1-based) as a grayscale image file in `folder`, by pdftoppm."""
    try:
        rendered: Sequence[object] = convert_from_path(
            str(path),
            dpi=dpi,
            first_page=number,
            last_page=number,
            output_folder=str(folder),
            paths_only=True,
            # Uncompressed PGM: Tesseract reads it directly, and PNG's compression alone took
            # longer than the rest of the rendering (measured: 2.2 s against 0.4 s per A4 page).
            fmt="ppm",
            grayscale=True,
            timeout=max(1, math.ceil(ocr.page_timeout_seconds)),
            # None is pdf2image's own default (PATH), though its annotation leaves it out.
            poppler_path=None if ocr.poppler_path is None else str(ocr.poppler_path),  # type: ignore[arg-type]
        )
    except (PDFInfoNotInstalledError, PopplerNotInstalledError):
        raise OcrFailedError(OcrNeeded("poppler_missing", "Poppler (pdftoppm) not found")) from None
    except PDFPopplerTimeoutError:
        raise OcrFailedError(
            OcrNeeded(
                "ocr_timeout",
                f"page {number} took longer than {ocr.page_timeout_seconds:g} s to render",
            )
        ) from None
    except (PDFPageCountError, PDFSyntaxError) as error:
        raise OcrFailedError(
            OcrNeeded("ocr_failed", f"Poppler could not render page {number}: {error}"[:300])
        ) from None
    if len(rendered) != 1:
        raise OcrFailedError(OcrNeeded("ocr_failed", f"Poppler rendered no image of page {number}"))
    return Path(str(rendered[0]))  # paths_only: a path string, not an image
