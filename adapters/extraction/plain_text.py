"""Plain text and Markdown: decoded as they are (Markdown syntax reads fine to people and
to the chunker, and keeps headings that help retrieval)."""

from __future__ import annotations

from pathlib import Path

from adapters.extraction.config import ExtractionLimits
from adapters.extraction.text_decoding import read_text
from application.ingestion_ports import ExtractedText
from domain.artifact import ExtractionMethod


def extract_plain(path: Path, limits: ExtractionLimits, method: ExtractionMethod) -> ExtractedText:
    """The file's text as one page."""
    text = read_text(path, limits.max_text_chars).replace("\r\n", "\n")
    return ExtractedText(method=method, pages=[text])
