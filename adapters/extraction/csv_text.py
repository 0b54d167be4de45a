"""CSV: one line per row, cells joined by " | " (quoting and embedded newlines resolved)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from adapters.extraction.config import ExtractionLimits
from adapters.extraction.text_decoding import read_text
from application.ingestion_ports import ExtractedText
from domain.artifact import ExtractionMethod


def extract_csv(path: Path, limits: ExtractionLimits) -> ExtractedText:
    """The table's rows as lines; text that is not valid CSV is kept as it is."""
    text = read_text(path, limits.max_text_chars)
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(text[:8192], ",;\t|")
    except csv.Error:
        dialect = csv.excel
    lines: list[str] = []
    try:
        for row in csv.reader(io.StringIO(text, newline=""), dialect):
            cells = [cell.strip() for cell in row]
            if any(cells):
                lines.append(" | ".join(cells))
    except csv.Error:
        # A stray quote or a cell over the csv module's field limit: the text still reads.
        return ExtractedText(method=ExtractionMethod.CSV, pages=[text])
    return ExtractedText(method=ExtractionMethod.CSV, pages=["\n".join(lines)])
