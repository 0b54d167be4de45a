"""Real OCR in tests: Tesseract and Poppler must be installed (`teaim setup` installs them).

A missing tool fails the test that needs it, never skips it: a green run cannot hide a missing
set-up step. Only the fallback tests hide the tools, through the settings.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from adapters.extraction.config import ExtractionLimits, OcrOptions
from adapters.extraction.dispatcher import FileExtractor

_TOOLS = ("tesseract", "pdftoppm", "pdfinfo")


@pytest.fixture
def ocr_tools() -> None:
    """Fails the test when Tesseract (with English) or Poppler is missing."""
    missing = [tool for tool in _TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: run `teaim setup` (apt-get installs them)")


def extractor(limits: ExtractionLimits | None = None, **ocr: object) -> FileExtractor:
    """A FileExtractor with default limits (or `limits`) and OcrOptions overridden by `ocr`."""
    return FileExtractor(limits or ExtractionLimits(), OcrOptions(**ocr))  # type: ignore[arg-type]


def stand_in_tesseract(folder: Path, behaviour: str) -> Path:
    """An executable standing in for a misbehaving `tesseract`: "hang" (writes its pid to
    `folder/pid`, then sleeps) or "fail" (complains on stderr, exits 1)."""
    script = folder / f"tesseract-{behaviour}"
    if behaviour == "hang":
        body = f'echo $$ > "{folder / "pid"}"\nexec sleep 120\n'
    elif behaviour == "fail":
        body = 'echo "Error in pixReadStream: Unknown format" >&2\nexit 1\n'
    else:
        raise ValueError(behaviour)
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    return script
