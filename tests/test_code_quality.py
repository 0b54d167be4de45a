"""The house rules as tests: ruff, ruff format, mypy strict and the import-linter layers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)


@pytest.mark.parametrize(
    "command",
    [
        pytest.param((str(BIN / "ruff"), "check", "."), id="ruff-check"),
        pytest.param((str(BIN / "ruff"), "format", "--check", "."), id="ruff-format"),
        pytest.param((str(BIN / "lint-imports"),), id="import-linter"),
        pytest.param((sys.executable, "-m", "mypy"), id="mypy-strict"),
    ],
)
def test_tool_is_clean(command: tuple[str, ...]) -> None:
    """Each tool passes on the whole tree, as configured in pyproject.toml."""
    result = _run(*command)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}"
