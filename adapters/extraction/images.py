"""Images (PNG, JPEG, TIFF, WebP): pixel and frame caps from the header, then OCR per frame.

`Image.open` reads only the header, so the caps hold before anything is decoded. Pillow's own
decompression-bomb check raises only above twice its limit (and warns below): here the limit is
ours and any excess is refused.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from adapters.extraction.config import ExtractionLimits, OcrOptions
from adapters.extraction.tesseract import OcrFailedError, ocr_file, tesseract_missing
from application.ingestion_ports import ExtractedText, ExtractionRefused, OcrNeeded
from domain.artifact import ExtractionMethod

# Only the formats the port accepts: Pillow would otherwise open whatever the bytes are (EPS,
# for one, is decoded by running Ghostscript).
_FORMATS = ("PNG", "JPEG", "TIFF", "WEBP")


def ocr_image(
    path: Path, limits: ExtractionLimits, ocr: OcrOptions
) -> ExtractedText | OcrNeeded | ExtractionRefused:
    """Each frame's text as a page (one page for most images)."""
    Image.MAX_IMAGE_PIXELS = limits.max_image_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=_FORMATS) as image:
                refused = _check_header(image, limits)
                if refused is not None:
                    return refused
                missing = tesseract_missing(ocr)
                if missing is not None:
                    return missing
                frames = getattr(image, "n_frames", 1)
                if frames == 1:
                    # The file as it is: no decoding in this process at all.
                    pages = [ocr_file(path, ocr, page=1)]
                else:
                    pages = _ocr_frames(image, frames, limits, ocr)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        return ExtractionRefused("too_many_pixels", str(error)[:200])
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as error:
        # OSError: Pillow reports a truncated or undecodable frame so.
        return ExtractionRefused("corrupt_image", f"unreadable image: {error}"[:200])
    except OcrFailedError as failed:
        return failed.need
    except _FrameRefusedError as refused:
        return refused.outcome
    if not any(pages):
        return OcrNeeded("ocr_empty", "OCR found no text in the image", page_count=len(pages))
    return ExtractedText(method=ExtractionMethod.OCR_IMAGE, pages=pages)


class _FrameRefusedError(Exception):
    def __init__(self, outcome: ExtractionRefused) -> None:
        super().__init__(outcome.detail)
        self.outcome = outcome


def _check_header(image: Image.Image, limits: ExtractionLimits) -> ExtractionRefused | None:
    width, height = image.size
    if width * height > limits.max_image_pixels:
        return ExtractionRefused(
            "too_many_pixels",
            f"{width}x{height} pixels (limit {limits.max_image_pixels} pixels)",
        )
    frames = getattr(image, "n_frames", 1)
    if frames > limits.max_pages:
        return ExtractionRefused("too_many_pages", f"{frames} frames (limit {limits.max_pages})")
    return None


def _ocr_frames(
    image: Image.Image, frames: int, limits: ExtractionLimits, ocr: OcrOptions
) -> list[str]:
    """Multi-page TIFF (or animated) frames: each checked, written as PNG, OCR'd."""
    pages: list[str] = []
    with tempfile.TemporaryDirectory(prefix="teaim-ocr-") as tmp:
        for index in range(frames):
            image.seek(index)
            refused = _check_header(image, limits)
            if refused is not None:
                raise _FrameRefusedError(refused)
            frame = Path(tmp) / f"frame-{index + 1}.png"
            image.save(frame, format="PNG")
            pages.append(ocr_file(frame, ocr, page=index + 1))
            frame.unlink()
    return pages
