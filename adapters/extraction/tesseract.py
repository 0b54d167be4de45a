"""Tesseract through pytesseract: one image file to text, under a timeout.

The image is passed as a path (pytesseract hands it to the `tesseract` command as it is, with
no re-encoding). Tesseract decodes through leptonica, not Pillow, so callers check the pixel cap
from the header before calling this.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytesseract

from adapters.extraction.config import OcrOptions
from application.ingestion_ports import OcrNeeded


class OcrFailedError(Exception):
    """OCR of one page gave no text: `need` says why (reason code and detail)."""

    def __init__(self, need: OcrNeeded) -> None:
        super().__init__(need.detail)
        self.need = need


def tesseract_missing(ocr: OcrOptions) -> OcrNeeded | None:
    """An OcrNeeded when the configured Tesseract cannot be run."""
    if shutil.which(ocr.tesseract_cmd) is None:
        return OcrNeeded(
            "tesseract_missing",
            f"Tesseract not found ({ocr.tesseract_cmd!r}): run `teaim setup` or set TESSERACT_CMD",
        )
    return None


def ocr_file(image: Path, ocr: OcrOptions, *, page: int) -> str:
    """The text Tesseract reads in `image`; raises OcrFailedError (naming `page`)."""
    # pytesseract keeps the command in a module global: the child process OCRs one document
    # with one configuration, so setting it here is safe.
    pytesseract.pytesseract.tesseract_cmd = ocr.tesseract_cmd
    try:
        text: str = pytesseract.image_to_string(
            str(image), lang=ocr.lang, timeout=ocr.page_timeout_seconds
        )
    except pytesseract.TesseractNotFoundError:
        raise OcrFailedError(
            OcrNeeded("tesseract_missing", f"Tesseract not found ({ocr.tesseract_cmd!r})")
        ) from None
    except pytesseract.TesseractError as error:
        raise OcrFailedError(
            OcrNeeded("ocr_failed", f"Tesseract failed on page {page}: {error.message}"[:300])
        ) from None
    except RuntimeError as error:
        # pytesseract kills the command at the timeout and raises a bare RuntimeError.
        if "timeout" not in str(error).lower():
            raise
        raise OcrFailedError(
            OcrNeeded(
                "ocr_timeout",
                f"page {page} took longer than {ocr.page_timeout_seconds:g} s to OCR",
            )
        ) from None
    return text.strip()
