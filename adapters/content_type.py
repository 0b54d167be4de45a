"""What a file is, told from its bytes: `filetype` for binary formats, our own rules for text.

Only the first HEAD_BYTES and the last TAIL_BYTES are looked at (the upload keeps them while
it streams), so sniffing costs the same for any file size. The client's Content-Type and file
name never override a binary signature: the extension only chooses among text types.

Why partly by hand (decision 0023): `filetype` knows binary signatures but answers None for
every text type, and calls a zip DOCX from its first entry's name alone; python-magic needs
the system libmagic, whose answers change between versions. So text types, DOCX-vs-zip (read
from the zip's central directory in the tail) and polyglots are our rules.
"""

from __future__ import annotations

import codecs
import re
import struct
from dataclasses import dataclass

import filetype

from domain.mime import OCTET_STREAM, media_type, mime_mismatch

HEAD_BYTES = 8 * 1024
# The zip end-of-central-directory record is within 64 KiB (its comment) + 22 bytes of the end.
TAIL_BYTES = 64 * 1024 + 22

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
ZIP = "application/zip"
HTML = "text/html"
# Binary types ingestion understands; any other signature is stored as what it is.
BINARY_TYPES = frozenset({PDF, "image/png", "image/jpeg", "image/tiff", "image/webp", ZIP})

_SRT_CUE = re.compile(rb"^\s*\d+\r?\n\d\d:\d\d:\d\d,\d{3} --> ", re.MULTILINE)
_HTML_START = re.compile(
    rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html|head|body)[\s>]", re.I | re.S
)
_MARKUP_IN_BINARY = re.compile(rb"<(script|html|svg|iframe)[\s>]", re.I)
_EOCD = b"PK\x05\x06"
_CENTRAL_ENTRY = b"PK\x01\x02"


class PolyglotError(ValueError):
    """The bytes are valid as two formats at once (a PNG with a zip appended, ...)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


@dataclass(frozen=True, slots=True)
class Sniffed:
    """The type the bytes have, what the client claimed, and whether the two disagree."""

    mime: str
    claimed_mime: str | None
    mismatch: bool


class SniffWindow:
    """Keeps the head and tail of a stream as it passes (bounded: HEAD + 2 * TAIL bytes)."""

    def __init__(self) -> None:
        self.head = bytearray()
        self._tail = bytearray()

    def feed(self, chunk: bytes) -> None:
        if len(self.head) < HEAD_BYTES:
            self.head += chunk[: HEAD_BYTES - len(self.head)]
        self._tail += chunk[-TAIL_BYTES:]
        if len(self._tail) > 2 * TAIL_BYTES:
            del self._tail[:-TAIL_BYTES]

    @property
    def tail(self) -> bytes:
        return bytes(self._tail[-TAIL_BYTES:])


def sniff(head: bytes, tail: bytes, *, name: str, claimed: str | None) -> Sniffed:
    """The file's type from its bytes; PolyglotError when it is two formats at once."""
    claim = media_type(claimed)
    mime = _binary_type(head, tail) or _text_type(head, name) or OCTET_STREAM
    _refuse_polyglots(mime, head, tail)
    return Sniffed(mime=mime, claimed_mime=claim, mismatch=mime_mismatch(claim, mime))


def _binary_type(head: bytes, tail: bytes) -> str | None:
    guessed: str | None = filetype.guess_mime(head)
    if guessed is None:
        return None
    if guessed in (ZIP, DOCX) or guessed.startswith("application/vnd.openxmlformats"):
        # filetype decides from the first entry's name; the central directory decides here.
        return DOCX if _is_docx(tail) else ZIP
    return guessed


def _zip_names(tail: bytes) -> list[bytes]:
    """Entry names from a zip's central directory, when the tail holds all of it."""
    at = tail.rfind(_EOCD)
    if at < 0 or len(tail) - at < 22:
        return []
    entries, cd_size = struct.unpack_from("<HI", tail, at + 10)
    start = at - cd_size
    if start < 0:
        return []  # the directory is bigger than the tail: not confirmed as DOCX
    names: list[bytes] = []
    pos = start
    for _ in range(min(entries, 5000)):
        if tail[pos : pos + 4] != _CENTRAL_ENTRY or pos + 46 > at:
            break
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", tail, pos + 28)
        names.append(tail[pos + 46 : pos + 46 + name_len])
        pos += 46 + name_len + extra_len + comment_len
    return names


def _is_docx(tail: bytes) -> bool:
    names = set(_zip_names(tail))
    return b"[Content_Types].xml" in names and b"word/document.xml" in names


def _decoded(head: bytes) -> str | None:
    """The head as text: strict UTF-8 (BOM allowed; a cut last character tolerated), or
    UTF-16 with a BOM; None for anything with a NUL or that does not decode."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return head.decode("utf-16")
        except UnicodeDecodeError:
            return None
    if b"\0" in head:
        return None
    body = head.removeprefix(codecs.BOM_UTF8)
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    try:
        return decoder.decode(body, final=False)  # a character cut by the window is fine
    except UnicodeDecodeError:
        return None


def _text_type(head: bytes, name: str) -> str | None:
    text = _decoded(head)
    if text is None:
        return None
    raw = text.encode("utf-8", errors="replace")
    first = text.lstrip("\ufeff").split("\n", 1)[0].strip()
    lower_name = name.lower()
    if first.startswith("WEBVTT"):
        return "text/vtt"
    if _SRT_CUE.search(raw[:2048]):
        return "application/x-subrip"
    if _HTML_START.match(raw):
        return HTML
    if lower_name.endswith(".csv") and _looks_like_csv(text):
        return "text/csv"
    if lower_name.endswith((".md", ".markdown")):
        return "text/markdown"
    return "text/plain"


def _looks_like_csv(text: str) -> bool:
    lines = [line for line in text.splitlines()[:20] if line.strip()]
    if not lines:
        return False
    for delimiter in (",", ";", "\t"):
        counts = {line.count(delimiter) for line in lines[:-1] or lines}
        if len(counts) == 1 and counts != {0}:
            return True
    return False


def _refuse_polyglots(mime: str, head: bytes, tail: bytes) -> None:
    if mime != PDF and b"%PDF-" in head[:1024]:
        # PDF readers accept a header anywhere in the first KiB: this is a PDF in disguise.
        raise PolyglotError("polyglot_pdf", f"a PDF header hides inside a {mime} file")
    if mime not in (ZIP, DOCX) and _zip_names(tail):
        raise PolyglotError("polyglot_zip", f"a zip archive is appended to a {mime} file")
    if mime in BINARY_TYPES and mime not in (ZIP, DOCX) and _MARKUP_IN_BINARY.search(head):
        raise PolyglotError("polyglot_markup", f"HTML or script markup inside a {mime} file")
