"""Provide `wrk` for bench.bell: already on PATH, or installed with apt-get (Debian/Ubuntu).

Usage: uv run python -m bench.setup_wrk   (or: uv run poe bench-setup)

Elsewhere it says how to get it and exits 1 (macOS: `brew install wrk`; other systems: build
https://github.com/wg/wrk with `make`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys


def main() -> int:
    """Install wrk when missing; 0 when it is on PATH afterwards."""
    found = shutil.which("wrk")
    if found:
        print(f"wrk: {found}")
        return 0
    apt = shutil.which("apt-get")
    if apt is None:
        print("wrk is missing and apt-get is not here: `brew install wrk` on macOS, else build")
        print("https://github.com/wg/wrk (make) and put it on PATH")
        return 1
    sudo: list[str] = []
    if os.geteuid() != 0:
        if shutil.which("sudo") is None:
            print("wrk is missing: run `apt-get install -y wrk` as root")
            return 1
        sudo = ["sudo"]
    print("installing wrk with apt-get")
    subprocess.run([*sudo, apt, "update", "-qq"], check=True)
    subprocess.run([*sudo, apt, "install", "-y", "-qq", "wrk"], check=True)
    found = shutil.which("wrk")
    print(f"wrk: {found}" if found else "apt-get ran, but wrk is still not on PATH")
    return 0 if found else 1


if __name__ == "__main__":
    sys.exit(main())
