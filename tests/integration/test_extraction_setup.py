"""`teaim setup`, and the extractor built from settings. Set-up is a no-op when Tesseract and
Poppler are present, and a clear refusal (exit 1) when they are missing and apt-get is not
there to install them."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from adapters.extraction.config import ExtractionLimits, OcrOptions
from interfaces.cli import main
from interfaces.cli_setup import missing_ocr_packages, tesseract_language_package
from interfaces.extraction import build_extractor
from interfaces.settings import Settings
from tests.support.ocr_tools import ocr_tools

__all__ = ["ocr_tools"]


def test_setup_is_a_no_op_when_everything_is_installed(ocr_tools: None) -> None:
    result = CliRunner().invoke(main, ["setup"], env={"OCR_LANG": "eng"})
    assert result.exit_code == 0, result.output
    assert "everything needed is installed" in result.output


def test_setup_without_apt_get_says_what_to_install_and_fails(tmp_path: Path) -> None:
    # Nothing on PATH (no apt-get, no Poppler) and Tesseract configured where it is not.
    env = {"PATH": str(tmp_path), "TESSERACT_CMD": str(tmp_path / "tesseract")}
    result = CliRunner().invoke(main, ["setup"], env=env)
    assert result.exit_code == 1
    assert "missing tesseract-ocr tesseract-ocr-eng poppler-utils" in result.output
    assert "apt-get is not here" in result.output


def test_missing_languages_and_poppler_name_their_debian_packages(
    ocr_tools: None, tmp_path: Path
) -> None:
    missing = missing_ocr_packages(
        tesseract_cmd="tesseract", poppler_path=tmp_path, languages=["eng", "chi_sim"]
    )
    assert missing == ["tesseract-ocr-chi-sim", "poppler-utils"]
    assert tesseract_language_package("deu") == "tesseract-ocr-deu"


def test_build_extractor_takes_its_bounds_from_the_settings(tmp_path: Path) -> None:
    settings = Settings(
        tesseract_cmd=str(tmp_path / "t"),
        poppler_path=tmp_path,
        ocr_lang="eng+deu",
        ocr_page_timeout_seconds=5,
        ocr_memory_limit_mb=512,
        extract_timeout_seconds=60,
        extract_max_pages=7,
        extract_max_image_pixels=2_000_000,
        docx_max_members=99,
        docx_max_uncompressed_bytes=2 * 1024 * 1024,
        docx_max_ratio=20,
    )
    extractor = build_extractor(settings)
    try:
        assert extractor.ocr == OcrOptions(
            tesseract_cmd=str(tmp_path / "t"),
            poppler_path=tmp_path,
            lang="eng+deu",
            page_timeout_seconds=5,
            memory_limit_mb=512,
            document_timeout_seconds=60,
        )
        assert extractor.limits == ExtractionLimits(
            max_pages=7,
            max_image_pixels=2_000_000,
            docx_max_members=99,
            docx_max_uncompressed_bytes=2 * 1024 * 1024,
            docx_max_ratio=20,
        )
    finally:
        extractor.close()


def test_an_ocr_language_is_a_code_not_arguments() -> None:
    with pytest.raises(ValidationError):
        Settings(ocr_lang="eng --tessdata-dir /tmp")
