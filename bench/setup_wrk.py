"""Provide `wrk` for bench.bell: already on PATH, or installed with apt-get (Debian/Ubuntu).

Usage: uv run python -m bench.setup_wrk   (or: uv run poe bench-setup)

Elsewhere it says how to get it and exits 1 (macOS: `brew install wrk`; other systems: build
https://github.com/wg/wrk with `make`).
"""

from __future__ import annotations

import shutil
import sys

from interfaces.cli_setup import ensure_debian_packages


def main() -> int:
    """Install wrk when missing; 0 when it is on PATH afterwards."""
    return ensure_debian_packages(lambda: [] if shutil.which("wrk") else ["wrk"])


if __name__ == "__main__":
    sys.exit(main())
