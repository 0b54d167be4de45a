"""Builds the text extractor the settings describe (the integrator wires it to the workers)."""

from __future__ import annotations

from adapters.extraction.config import ExtractionLimits, OcrOptions
from adapters.extraction.dispatcher import FileExtractor
from interfaces.settings import Settings


def extraction_limits(settings: Settings) -> ExtractionLimits:
    """The per-document bounds from the settings."""
    return ExtractionLimits(
        max_pages=settings.extract_max_pages,
        max_image_pixels=settings.extract_max_image_pixels,
        docx_max_members=settings.docx_max_members,
        docx_max_uncompressed_bytes=settings.docx_max_uncompressed_bytes,
        docx_max_ratio=settings.docx_max_ratio,
    )


def ocr_options(settings: Settings) -> OcrOptions:
    """Where Tesseract and Poppler are, and the bounds of the process that runs them."""
    return OcrOptions(
        tesseract_cmd=settings.tesseract_cmd,
        poppler_path=settings.poppler_path,
        lang=settings.ocr_lang,
        dpi=settings.ocr_dpi,
        page_timeout_seconds=settings.ocr_page_timeout_seconds,
        memory_limit_mb=settings.ocr_memory_limit_mb,
        document_timeout_seconds=settings.extract_timeout_seconds,
    )


def build_extractor(settings: Settings) -> FileExtractor:
    """The `Extractor` for every supported format (call `close()` at shutdown)."""
    return FileExtractor(extraction_limits(settings), ocr_options(settings))
