"""Bytes of a text file to `str`: BOMs, then strict UTF-8, then cp1252, then Latin-1.

No statistical charset guesser: the order above decodes what people upload (UTF-8, Excel's
UTF-16 and cp1252 exports) and never fails (Latin-1 maps every byte), where guessers are slow on
large files and unstable on short ones.
"""

from __future__ import annotations

import codecs
from pathlib import Path

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# A character takes at most 4 bytes in any encoding above: reading 4 bytes per kept character
# (plus a BOM) is enough for the text the artifact keeps, and bounds memory on a huge file.
_BYTES_PER_CHAR = 4


def read_text(path: Path, max_chars: int) -> str:
    """The file's text, decoded as well as can be, cut to about `max_chars` characters."""
    limit = max_chars * _BYTES_PER_CHAR + 4
    with path.open("rb") as file:
        data = file.read(limit)
        cut = bool(file.read(1))
    return decode_text(data, cut=cut)[:max_chars]


def decode_text(data: bytes, *, cut: bool = False) -> str:
    """Decode `data`; `cut` says it stops mid-file (a partial last character is dropped)."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return _decode(data[len(bom) :], encoding, cut=cut, errors="replace")
    try:
        return _decode(data, "utf-8", cut=cut, errors="strict")
    except UnicodeDecodeError:
        pass
    try:
        # cp1252 leaves five bytes undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D).
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _decode(data: bytes, encoding: str, *, cut: bool, errors: str) -> str:
    # An incremental decoder with final=False keeps a character split by the read limit out.
    decoder = codecs.getincrementaldecoder(encoding)(errors=errors)
    return decoder.decode(data, final=not cut)
