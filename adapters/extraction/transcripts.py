"""WebVTT and SubRip transcripts: the cues' text only (timings, ids and styling dropped)."""

from __future__ import annotations

import io
from pathlib import Path

import srt
import webvtt
from webvtt.errors import MalformedFileError

from adapters.extraction.config import ExtractionLimits
from adapters.extraction.text_decoding import read_text
from application.ingestion_ports import ExtractedText, ExtractionRefused
from domain.artifact import ExtractionMethod


def extract_vtt(path: Path, limits: ExtractionLimits) -> ExtractedText | ExtractionRefused:
    """The cues' text, one cue a line."""
    text = read_text(path, limits.max_text_chars)
    try:
        captions = webvtt.from_buffer(io.StringIO(text))
        lines = [caption.text.strip() for caption in captions.captions]
    except MalformedFileError as error:
        return ExtractionRefused("corrupt_transcript", f"not a WebVTT file: {error}"[:200])
    return _transcript(lines)


def extract_srt(path: Path, limits: ExtractionLimits) -> ExtractedText | ExtractionRefused:
    """The subtitles' text, one subtitle a line."""
    text = read_text(path, limits.max_text_chars)
    try:
        lines = [subtitle.content.strip() for subtitle in srt.parse(text)]
    except srt.SRTParseError as error:
        return ExtractionRefused("corrupt_transcript", f"not a SubRip file: {error}"[:200])
    return _transcript(lines)


def _transcript(lines: list[str]) -> ExtractedText:
    return ExtractedText(
        method=ExtractionMethod.TRANSCRIPT, pages=["\n".join(line for line in lines if line)]
    )
