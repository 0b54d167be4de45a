"""Media types as the service compares them: a client's claim against what the bytes are.

Pure: the projection and the HTTP layer both decide "does the claim match?" with this one
rule, so the detail and the documents list never disagree.
"""

from __future__ import annotations

import re

OCTET_STREAM = "application/octet-stream"

# Names clients and browsers send for the same thing (the sniffer answers the right side).
_ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "image/x-png": "image/png",
    "image/tif": "image/tiff",
    "application/x-pdf": "application/pdf",
    "text/x-markdown": "text/markdown",
    "text/srt": "application/x-subrip",
    "application/srt": "application/x-subrip",
    "text/x-srt": "application/x-subrip",
    "application/csv": "text/csv",
    "text/comma-separated-values": "text/csv",
    "application/xhtml+xml": "text/html",
}
# Text types a client may fairly pick for any text file: a claim among these against a
# sniffed text type is no mismatch (the sniffer's choice among text types is a guess too).
_TEXT_FAMILY = frozenset(
    {"text/plain", "text/markdown", "text/csv", "text/vtt", "application/x-subrip"}
)


# RFC 6838 restricted names: anything else (a NUL, spaces, a 10 kB header) claims nothing, so
# no client-supplied oddity reaches an event or a read model.
_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")


def media_type(value: str | None) -> str | None:
    """`type/subtype`, lower-cased, parameters dropped, aliases resolved (None: no claim, or
    not a well-formed media type)."""
    if value is None:
        return None
    base = value.split(";", 1)[0].strip().lower()
    if not _MEDIA_TYPE.fullmatch(base):
        return None
    return _ALIASES.get(base, base)


def mime_mismatch(claimed: str | None, sniffed: str) -> bool:
    """Whether the client's claim contradicts the sniffed type.

    No claim, or the generic `application/octet-stream`, claims nothing.
    """
    claim = media_type(claimed)
    if claim is None or claim == OCTET_STREAM:
        return False
    actual = media_type(sniffed) or sniffed
    if claim == actual:
        return False
    return not (claim in _TEXT_FAMILY and actual in _TEXT_FAMILY)
