"""`teaim setup`: a no-op when Tesseract and Poppler are present; a clear refusal (exit 1)
when they are missing and apt-get is not there to install them."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from interfaces.cli import main
from interfaces.cli_setup import missing_ocr_packages, tesseract_language_package
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
