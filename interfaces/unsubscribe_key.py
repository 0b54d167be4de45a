"""The key that signs unsubscribe links: UNSUBSCRIBE_KEY, or one made once under DATA_DIR.

Links in sent mail must keep working across restarts and in every process (the API answers
the click, a worker signs the digest), so an unset key cannot be a fresh random one per
process: the first process makes it, atomically, and every process on that DATA_DIR reads
the same file. A corrupt file stops startup instead of being replaced: a new key would
silently break every link already sent.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import stat
import tempfile
from pathlib import Path

from interfaces.settings import MIN_UNSUBSCRIBE_KEY_BYTES, Settings

log = logging.getLogger("teaim.keys")

KEY_FILE = Path("keys") / "unsubscribe.key"


def unsubscribe_key(settings: Settings) -> bytes:
    """UNSUBSCRIBE_KEY when set, else the DATA_DIR key file (made on first use)."""
    if settings.unsubscribe_key is not None:
        return settings.unsubscribe_key.get_secret_value().encode()
    return shared_key_file(settings.data_dir / KEY_FILE)


def shared_key_file(path: Path) -> bytes:
    """The key kept at `path` (hex text, 0600), made at random by whichever process is first.

    The new key is written to a private temporary file beside it and hard-linked into place:
    the link either creates the whole file or fails because another process already did, so
    no process ever reads a half-written key, and all of them end up with the same one.
    """
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # mkstemp creates the file 0600, readable by this user only.
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="ascii") as out:
                out.write(secrets.token_hex(MIN_UNSUBSCRIBE_KEY_BYTES) + "\n")
                out.flush()
                os.fsync(out.fileno())
            # Another process made it first: theirs is the key.
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
        finally:
            os.unlink(temporary)
    return _read(path)


def _read(path: Path) -> bytes:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("key file %s is readable by others: chmod 600 it", path)
    text = path.read_text(encoding="ascii", errors="replace").strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < MIN_UNSUBSCRIBE_KEY_BYTES:
        raise RuntimeError(
            f"{path} does not hold a key of {MIN_UNSUBSCRIBE_KEY_BYTES}+ bytes in hex;"
            " restore it (replacing it breaks every unsubscribe link already sent)"
        )
    return key
