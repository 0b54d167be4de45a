"""The bounds and OCR options every extractor obeys (built from settings by interfaces)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from domain.artifact import MAX_PAGES, MAX_TEXT_CHARS


@dataclass(frozen=True, slots=True)
class ExtractionLimits:
    """What one document may cost before it is refused."""

    # Pages (PDF pages, TIFF frames) one document may have: checked before any page is read.
    max_pages: int = 500
    # Pixels one image or rendered page may have, checked from the header before decoding.
    max_image_pixels: int = 50_000_000
    # DOCX (a zip): checked on the central directory before any member is inflated.
    docx_max_members: int = 2_000
    docx_max_uncompressed_bytes: int = 100 * 1024 * 1024
    docx_max_ratio: int = 100
    # Characters of text kept (the artifact keeps no more): bounds reads of text files too.
    max_text_chars: int = MAX_TEXT_CHARS
    # Bytes of HTML parsed (markup costs several times its text in parser memory).
    max_html_bytes: int = 20 * 1024 * 1024

    def __post_init__(self) -> None:
        if not 1 <= self.max_pages <= MAX_PAGES:
            raise ValueError(f"max_pages must be 1 to {MAX_PAGES}")
        if self.max_image_pixels < 1 or self.docx_max_members < 1 or self.docx_max_ratio < 1:
            raise ValueError("extraction limits must be positive")


@dataclass(frozen=True, slots=True)
class OcrOptions:
    """How Tesseract and Poppler are found and run, and the child process's bounds."""

    tesseract_cmd: str = "tesseract"
    # Directory holding pdftoppm and pdfinfo; None: look them up on PATH.
    poppler_path: Path | None = None
    lang: str = "eng"
    dpi: int = 300
    page_timeout_seconds: float = 60.0
    # Address-space limit of the child process (and the programs it starts), in MiB.
    memory_limit_mb: int = 1024
    # The whole document in the child: past this the child is killed.
    document_timeout_seconds: float = 900.0
    # Below this many non-whitespace characters per page on average, a PDF is a scan.
    scanned_chars_per_page: int = 50
