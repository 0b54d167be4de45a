"""`teaim setup`: install the system programs the project needs, when they are missing.

Tesseract (with the OCR_LANG languages) and Poppler (pdftoppm, pdfinfo) come from Debian's
archive through apt-get (run as root, or through sudo). A no-op when everything is present, so
`poe check` and the README's start command run it every time at no cost. Where apt-get is not
available, it says what to install and exits 1: OCR tests fail rather than skip without them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

import click

from interfaces.embedding import prepare_embedder
from interfaces.settings import Settings

POPPLER_COMMANDS = ("pdftoppm", "pdfinfo")


def tesseract_language_package(lang: str) -> str:
    """Debian's package for a Tesseract language code (`chi_sim` -> tesseract-ocr-chi-sim)."""
    return "tesseract-ocr-" + lang.lower().replace("_", "-")


def missing_ocr_packages(
    *, tesseract_cmd: str, poppler_path: Path | None, languages: Sequence[str]
) -> list[str]:
    """The Debian packages to install for OCR to work as configured (empty: all present)."""
    missing: list[str] = []
    if shutil.which(tesseract_cmd) is None:
        missing += ["tesseract-ocr", *(tesseract_language_package(lang) for lang in languages)]
    else:
        installed = _tesseract_languages(tesseract_cmd)
        missing += [tesseract_language_package(lang) for lang in languages if lang not in installed]
    where = None if poppler_path is None else str(poppler_path)
    if any(shutil.which(command, path=where) is None for command in POPPLER_COMMANDS):
        missing.append("poppler-utils")
    return list(dict.fromkeys(missing))


def _tesseract_languages(tesseract_cmd: str) -> set[str]:
    listing = subprocess.run(  # noqa: S603 - the configured command, no shell
        [tesseract_cmd, "--list-langs"], capture_output=True, text=True, timeout=30, check=False
    )
    # The first line is a heading ("List of available languages in ..."), one code a line next.
    return {line.strip() for line in listing.stdout.splitlines()[1:] if line.strip()}


def ensure_debian_packages(
    missing: Callable[[], list[str]], echo: Callable[[str], None] = click.echo
) -> int:
    """Install what `missing()` names with apt-get (update once); 0 when nothing is missing
    afterwards, 1 (after saying what to do) when it cannot install or the install fell short."""
    packages = missing()
    if not packages:
        echo("setup: everything needed is installed")
        return 0
    names = " ".join(packages)
    apt = shutil.which("apt-get")
    if apt is None:
        echo(f"setup: missing {names}, and apt-get is not here: install them by hand")
        echo("  (macOS: brew install tesseract poppler; elsewhere your system's packages)")
        return 1
    sudo: list[str] = []
    if os.geteuid() != 0:
        if shutil.which("sudo") is None:
            echo(f"setup: missing {names}: run `apt-get install {names}` as root")
            return 1
        sudo = ["sudo"]
    # No questions (CI has no terminal) and nothing beyond what the packages depend on.
    quiet = [*sudo, "env", "DEBIAN_FRONTEND=noninteractive", apt]
    echo(f"setup: installing {names} with apt-get")
    try:
        subprocess.run([*quiet, "update", "-qq"], check=True)  # noqa: S603 - fixed arguments
        subprocess.run(  # noqa: S603 - fixed arguments and package names
            [*quiet, "install", "-y", "-qq", "--no-install-recommends", *packages], check=True
        )
    except subprocess.CalledProcessError as error:
        echo(f"setup: apt-get failed ({error.returncode}): install {names} by hand")
        return 1
    still = missing()
    if still:
        echo(f"setup: apt-get ran, but {' '.join(still)} is still missing")
        return 1
    echo(f"setup: installed {names}")
    return 0


@click.command("setup")
def setup_command() -> None:
    """Install Tesseract and Poppler (apt-get) when missing, and build the embedding model's
    graph from its locked weights (checked by SHA-256); a no-op when both are done."""
    settings = Settings()
    languages = settings.ocr_lang.split("+")
    code = ensure_debian_packages(
        lambda: missing_ocr_packages(
            tesseract_cmd=settings.tesseract_cmd,
            poppler_path=settings.poppler_path,
            languages=languages,
        )
    )
    if code:
        raise SystemExit(code)
    graph = prepare_embedder(settings)
    click.echo(f"setup: embedding model ready ({graph.name})", err=True)
