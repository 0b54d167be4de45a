"""The `Extractor`: picks the format's module by the sniffed MIME type.

The MIME type comes from the bytes (sniffed at upload). Text formats cannot be told apart by
their bytes, so for a generic text type the file name's extension may refine it (a `.vtt` sent
as text/plain); an extension never turns a file into a binary format the bytes do not show.
"""

from __future__ import annotations

from pathlib import Path

from adapters.extraction.config import ExtractionLimits, OcrOptions
from adapters.extraction.csv_text import extract_csv
from adapters.extraction.isolation import IsolatedKind, IsolatedRunner
from adapters.extraction.plain_text import extract_plain
from adapters.extraction.transcripts import extract_srt, extract_vtt
from application.ingestion_ports import ExtractedText, ExtractionOutcome, ExtractionRefused
from domain.artifact import ExtractionMethod

_DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
_KIND_BY_MIME: dict[str, str] = {
    "text/plain": "text",
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    "text/csv": "csv",
    "application/csv": "csv",
    "text/tab-separated-values": "csv",
    "text/vtt": "vtt",
    "application/x-subrip": "srt",
    "text/srt": "srt",
    "application/srt": "srt",
    "text/html": "html",
    "application/xhtml+xml": "html",
    _DOCX: "docx",
    "application/pdf": "pdf",
    "image/png": "image",
    "image/jpeg": "image",
    "image/tiff": "image",
    "image/webp": "image",
}
# Types a sniffer answers for text it cannot classify.
_GENERIC_TEXT = {"text/plain", "application/octet-stream", ""}
_TEXT_KIND_BY_EXTENSION = {
    ".txt": "text",
    ".text": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".csv": "csv",
    ".tsv": "csv",
    ".vtt": "vtt",
    ".srt": "srt",
    ".html": "html",
    ".htm": "html",
}
_ISOLATED: dict[str, IsolatedKind] = {
    "html": "html",
    "docx": "docx",
    "pdf": "pdf",
    "image": "image",
}


def kind_for(path: Path, mime: str) -> str | None:
    """The extractor's name for a file of sniffed type `mime` (None: unsupported)."""
    essence = mime.split(";", 1)[0].strip().lower()
    if essence in _GENERIC_TEXT:
        by_name = _TEXT_KIND_BY_EXTENSION.get(path.suffix.lower())
        if by_name is not None:
            return by_name
    return _KIND_BY_MIME.get(essence)


class FileExtractor:
    """The `Extractor` port over every supported format."""

    def __init__(self, limits: ExtractionLimits, ocr: OcrOptions) -> None:
        self.limits = limits
        self.ocr = ocr
        self._isolated = IsolatedRunner()

    def close(self) -> None:
        """Stop the helper processes (they are daemons: they also end with this process)."""
        self._isolated.close()

    def extract(self, path: Path, mime: str) -> ExtractionOutcome:
        """The outcome for the file at `path`; raises only for failures worth retrying
        (the file is missing, the child process could not start or failed unexpectedly)."""
        if not path.is_file():
            raise FileNotFoundError(f"no file to extract at {path}")
        kind = kind_for(path, mime)
        if kind is None:
            return ExtractionRefused("unsupported_type", f"cannot extract text from {mime[:80]}")
        outcome = self._extract(kind, path)
        if isinstance(outcome, ExtractedText):
            # PostgreSQL text (the event log, the chunks) cannot hold NUL.
            return ExtractedText(
                method=outcome.method, pages=[page.replace("\x00", "") for page in outcome.pages]
            )
        return outcome

    def _extract(self, kind: str, path: Path) -> ExtractionOutcome:
        limits = self.limits
        if kind == "text":
            return extract_plain(path, limits, ExtractionMethod.TEXT)
        if kind == "markdown":
            return extract_plain(path, limits, ExtractionMethod.MARKDOWN)
        if kind == "csv":
            return extract_csv(path, limits)
        if kind == "vtt":
            return extract_vtt(path, limits)
        if kind == "srt":
            return extract_srt(path, limits)
        return self._isolated.run(_ISOLATED[kind], path, limits, self.ocr)
