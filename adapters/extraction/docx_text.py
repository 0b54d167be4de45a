"""DOCX: paragraphs and table cells, in document order, after a zip-bomb guard.

The guard reads only the zip's central directory (`ZipFile.infolist`) and refuses a file with
too many members, too many uncompressed bytes in all, or a member that inflates past the ratio
limit, before python-docx inflates anything. The declared sizes bound the actual ones: Python's
zipfile never returns more than a member's declared `file_size` (and checks the CRC), so a
lying header truncates a member rather than inflating it. python-docx's lxml parser resolves no
entities (no XXE, no billion laughs).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import docx
from docx.document import Document
from docx.table import Table

from adapters.extraction.config import ExtractionLimits
from application.ingestion_ports import ExtractedText, ExtractionRefused
from domain.artifact import ExtractionMethod

_MAIN_PART = "word/document.xml"
# Ratios are only suspicious on members big enough to matter (an XML part of zeros compresses
# 1000:1 honestly at a few KiB).
_RATIO_FLOOR_BYTES = 1024 * 1024


def check_docx_zip(path: Path, limits: ExtractionLimits) -> ExtractionRefused | None:
    """A refusal when the zip is not a DOCX or would inflate past the limits; else None."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        return ExtractionRefused("corrupt_docx", f"not a readable zip: {error}"[:200])
    if len(members) > limits.docx_max_members:
        return ExtractionRefused(
            "zip_bomb", f"{len(members)} zip members (limit {limits.docx_max_members})"
        )
    total = sum(member.file_size for member in members)
    if total > limits.docx_max_uncompressed_bytes:
        return ExtractionRefused(
            "zip_bomb",
            f"{total} bytes uncompressed (limit {limits.docx_max_uncompressed_bytes})",
        )
    for member in members:
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > _RATIO_FLOOR_BYTES and ratio > limits.docx_max_ratio:
            return ExtractionRefused(
                "zip_bomb",
                f"{member.filename[:80]!r} inflates {ratio:.0f}x (limit {limits.docx_max_ratio}x)",
            )
    if _MAIN_PART not in {member.filename for member in members}:
        return ExtractionRefused("corrupt_docx", f"no {_MAIN_PART}: not a Word document")
    return None


def extract_docx(path: Path, limits: ExtractionLimits) -> ExtractedText | ExtractionRefused:
    """The document's text as one page (DOCX has no fixed pages)."""
    refused = check_docx_zip(path, limits)
    if refused is not None:
        return refused
    try:
        document = docx.Document(str(path))
    except Exception as error:  # python-docx raises many types on bad parts
        return ExtractionRefused("corrupt_docx", f"unreadable: {type(error).__name__}")
    lines = _lines(document)
    return ExtractedText(method=ExtractionMethod.DOCX, pages=["\n".join(lines)])


def _lines(document: Document) -> list[str]:
    """Paragraphs and tables in body order (a table: one line per row)."""
    lines: list[str] = []
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            lines.extend(_table_lines(block))
        elif text := block.text.strip():
            lines.append(text)
    return lines


def _table_lines(table: Table) -> list[str]:
    lines: list[str] = []
    for row in table.rows:
        cells: list[str] = []
        for cell in row.cells:
            # A merged cell repeats in each grid position it spans: keep it once.
            text = cell.text.strip()
            if text and (not cells or cells[-1] != text):
                cells.append(text)
        if cells:
            lines.append(" | ".join(cells))
    return lines
