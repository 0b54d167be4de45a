"""Blob keys and safe file names: where an uploaded file's bytes live in the blob store.

Pure functions: the key of a blob is derived from ids the service made plus a sanitised
name, so no client-chosen text can move a blob out of its org/project prefix.
"""

from __future__ import annotations

import unicodedata
from uuid import UUID

# A file name's budget in UTF-8 bytes: well under the 255-byte limit of common file systems
# once the "<uuid>__" prefix (38 bytes) is added.
MAX_SAFE_NAME_BYTES = 120
FALLBACK_NAME = "file"

# Characters that are no control code but still reorder or hide text (bidi overrides and
# isolates, zero-width marks): a name like "invoice\u202efdp.exe" would display as another.
_INVISIBLE = frozenset(
    "\u061c\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
    "\u2060\u2066\u2067\u2068\u2069\ufeff"
)
_REPLACED = frozenset('/\\:*?"<>|')


def _kept(char: str) -> bool:
    # Unicode categories C* are control, format, surrogate, private use and unassigned.
    return char not in _INVISIBLE and not unicodedata.category(char).startswith("C")


def _truncate_utf8(text: str, limit: int) -> str:
    # Cut on a character boundary, keeping the extension when it is short.
    if len(text.encode()) <= limit:
        return text
    stem, dot, ext = text.rpartition(".")
    if dot and stem and 0 < len(ext.encode()) <= 16:
        head = _truncate_utf8(stem, limit - len(ext.encode()) - 1)
        return f"{head}.{ext}" if head else _truncate_utf8(ext, limit)
    return text.encode()[:limit].decode("utf-8", errors="ignore")


def safe_file_name(name: str) -> str:
    """A file name fit for a blob key and a Content-Disposition: the last path part of
    `name`, NFC, with no control, format or path characters, no leading dots or spaces, at
    most MAX_SAFE_NAME_BYTES of UTF-8, never empty."""
    text = unicodedata.normalize("NFC", name)
    # Both separators count: a Windows client sends C:\\Users\\x\\report.pdf.
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join("_" if c in _REPLACED else c for c in text if _kept(c))
    text = " ".join(text.split())  # any run of whitespace is one space
    text = text.lstrip(". ").rstrip(". ")
    text = _truncate_utf8(text, MAX_SAFE_NAME_BYTES).rstrip(". ")
    # NFC of the cut text may differ from the cut of the NFC text only by growing shorter.
    text = unicodedata.normalize("NFC", text)
    return text or FALLBACK_NAME


def blob_prefix(org_id: UUID, project_id: UUID) -> str:
    """The prefix under which every blob of a project lives (ends with '/')."""
    return f"org/{org_id}/project/{project_id}/"


def blob_key(org_id: UUID, project_id: UUID, blob_id: UUID, safe_name: str) -> str:
    """`org/<org>/project/<project>/<uuid>__<safe-name>`; the name is sanitised again here,
    so a caller that forgot cannot escape the prefix."""
    return f"{blob_prefix(org_id, project_id)}{blob_id}__{safe_file_name(safe_name)}"
