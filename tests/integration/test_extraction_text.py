"""Text formats: charset detection, Markdown, CSV, HTML (hidden content stripped), VTT/SRT,
the MIME dispatch and its text-only fallback by extension."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.extraction.dispatcher import FileExtractor
from adapters.extraction.text_decoding import decode_text, read_text
from application.ingestion_ports import ExtractedText, ExtractionRefused
from domain.artifact import ExtractionMethod
from tests.support.ocr_tools import extractor
from tests.support.sample_files import (
    HIDDEN_CANARIES,
    csv_table,
    html_with_hidden_content,
    srt_transcript,
    vtt_transcript,
)

DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@pytest.fixture(scope="module")
def files() -> Iterator[FileExtractor]:
    subject = extractor()
    yield subject
    subject.close()


def _extract(files: FileExtractor, path: Path, data: bytes, mime: str) -> ExtractedText:
    path.write_bytes(data)
    outcome = files.extract(path, mime)
    assert isinstance(outcome, ExtractedText), outcome
    return outcome


SAMPLE = "Café déjà vu — “quoted” naïve"


@pytest.mark.parametrize(
    "data",
    [
        SAMPLE.encode("utf-8"),
        SAMPLE.encode("utf-8-sig"),
        SAMPLE.encode("utf-16"),  # with its BOM, in this machine's byte order
        "\ufeff".encode("utf-16-be") + SAMPLE.encode("utf-16-be"),
        SAMPLE.encode("cp1252"),
    ],
    ids=["utf-8", "utf-8-sig", "utf-16", "utf-16-be", "cp1252"],
)
def test_plain_text_in_each_common_encoding_reads_back(
    files: FileExtractor, tmp_path: Path, data: bytes
) -> None:
    outcome = _extract(files, tmp_path / "notes.txt", data, "text/plain")
    assert outcome.method == ExtractionMethod.TEXT
    assert outcome.pages == [SAMPLE]


def test_bytes_undefined_in_cp1252_fall_back_to_latin1() -> None:
    assert decode_text(b"caf\xe9 \x81") == "café \x81"


@given(st.binary(max_size=200))
def test_any_bytes_decode_without_error(data: bytes) -> None:
    assert isinstance(decode_text(data), str)


@given(st.text(max_size=200).filter(lambda text: not text.startswith("\ufeff")))
def test_utf8_text_decodes_to_itself(text: str) -> None:
    assert decode_text(text.encode("utf-8")) == text


def test_a_read_cut_inside_a_character_keeps_the_whole_characters(tmp_path: Path) -> None:
    path = tmp_path / "long.txt"
    path.write_bytes(("é" * 100).encode("utf-8"))
    # Room for 10 characters reads 44 bytes: 22 whole "é", cut to the 10 kept.
    assert read_text(path, 10) == "é" * 10


def test_markdown_keeps_its_text(files: FileExtractor, tmp_path: Path) -> None:
    outcome = _extract(
        files, tmp_path / "r.md", b"# Title\r\n\r\nSome *text*.\r\n", "text/markdown"
    )
    assert outcome.method == ExtractionMethod.MARKDOWN
    assert outcome.pages == ["# Title\n\nSome *text*.\n"]


def test_csv_rows_become_lines_with_quoting_resolved(files: FileExtractor, tmp_path: Path) -> None:
    data = b'name,notes\r\nAda,"likes, commas"\r\nBob,"two\r\nlines"\r\n,\r\n'
    outcome = _extract(files, tmp_path / "t.csv", data, "text/csv")
    assert outcome.method == ExtractionMethod.CSV
    assert outcome.pages == ["name | notes\nAda | likes, commas\nBob | two\r\nlines"]


def test_csv_from_the_sample_factory(files: FileExtractor, tmp_path: Path) -> None:
    data = csv_table([["item", "cost"], ["lantern, brass", "12"]]).encode()
    outcome = _extract(files, tmp_path / "c.csv", data, "text/csv")
    assert outcome.pages == ["item | cost\nlantern, brass | 12"]


def test_semicolon_csv_is_sniffed(files: FileExtractor, tmp_path: Path) -> None:
    outcome = _extract(files, tmp_path / "t.csv", b"a;b\n1;2\n3;4\n", "text/csv")
    assert outcome.pages == ["a | b\n1 | 2\n3 | 4"]


def test_html_drops_scripts_styles_and_hidden_content(files: FileExtractor, tmp_path: Path) -> None:
    data = html_with_hidden_content("visible harbour words").encode()
    outcome = _extract(files, tmp_path / "page.html", data, "text/html")
    assert outcome.method == ExtractionMethod.HTML
    text = outcome.pages[0]
    assert "visible harbour words & more" in text
    assert "Quarterly plan" in text
    assert "cell one" in text
    assert "cell two" in text
    for canary in HIDDEN_CANARIES:
        assert canary not in text, canary


def test_vtt_keeps_only_the_cue_text(files: FileExtractor, tmp_path: Path) -> None:
    data = vtt_transcript(["Hello there.", "<v Bob>General Kenobi.</v>"]).encode()
    outcome = _extract(files, tmp_path / "call.vtt", data, "text/vtt")
    assert outcome.method == ExtractionMethod.TRANSCRIPT
    assert outcome.pages == ["Hello there.\nGeneral Kenobi."]


def test_srt_keeps_only_the_subtitle_text(files: FileExtractor, tmp_path: Path) -> None:
    data = srt_transcript(["First line.", "Second line."]).encode()
    outcome = _extract(files, tmp_path / "call.srt", data, "application/x-subrip")
    assert outcome.pages == ["First line.\nSecond line."]


@pytest.mark.parametrize(
    ("name", "mime"), [("bad.vtt", "text/vtt"), ("bad.srt", "application/x-subrip")]
)
def test_a_malformed_transcript_is_refused_by_name(
    files: FileExtractor, tmp_path: Path, name: str, mime: str
) -> None:
    path = tmp_path / name
    path.write_text("this is not a transcript at all\n")
    outcome = files.extract(path, mime)
    assert isinstance(outcome, ExtractionRefused)
    assert outcome.reason == "corrupt_transcript"


def test_generic_text_is_refined_by_a_text_extension(files: FileExtractor, tmp_path: Path) -> None:
    data = vtt_transcript(["Only the cue."]).encode()
    outcome = _extract(files, tmp_path / "x__call.vtt", data, "text/plain; charset=utf-8")
    assert outcome.method == ExtractionMethod.TRANSCRIPT


def test_an_extension_never_makes_text_a_binary_format(
    files: FileExtractor, tmp_path: Path
) -> None:
    outcome = _extract(files, tmp_path / "fake.pdf", b"just words", "text/plain")
    assert outcome.method == ExtractionMethod.TEXT
    assert outcome.pages == ["just words"]


def test_an_unsupported_type_is_refused_by_name(files: FileExtractor, tmp_path: Path) -> None:
    path = tmp_path / "a.zip"
    path.write_bytes(b"PK\x03\x04")
    outcome = files.extract(path, "application/zip")
    assert outcome == ExtractionRefused(
        "unsupported_type", "cannot extract text from application/zip"
    )


def test_nul_characters_are_removed(files: FileExtractor, tmp_path: Path) -> None:
    outcome = _extract(files, tmp_path / "n.txt", b"a\x00b", "text/plain")
    assert outcome.pages == ["ab"]


def test_a_missing_file_raises_for_a_retry(files: FileExtractor, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        files.extract(tmp_path / "gone.txt", "text/plain")
