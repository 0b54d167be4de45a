"""Files for extraction and upload tests, made in-process: rendered text, PDFs of every kind,
Office documents, transcripts, and hostile files (bombs, encrypted, corrupt, polyglot).

Everything returns bytes (write them where the test needs them). Rendered text uses Pillow's
built-in font, which Tesseract reads without any font package installed.
"""

from __future__ import annotations

import csv
import hashlib
import io
import struct
import zipfile
import zlib

import docx
from PIL import Image, ImageDraw, ImageFont

# Words Tesseract reads reliably from the default font (no digits: 0 and O get confused).
OCR_WORDS = ("harbour", "lantern", "meadow", "copper", "violet", "thunder")

_DPI = 300
_A4_AT_150_DPI = (1240, 1754)


def rendered_page(lines: list[str], *, size: tuple[int, int] = _A4_AT_150_DPI) -> Image.Image:
    """A white grayscale page with `lines` drawn in black, large enough to OCR."""
    image = Image.new("L", size, color=255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=48)
    for row, line in enumerate(lines):
        draw.text((100, 120 + row * 90), line, fill=0, font=font)
    return image


def png_of_text(lines: list[str]) -> bytes:
    """A PNG of `lines` rendered as text."""
    return _save(rendered_page(lines), "PNG")


def image_of_text(lines: list[str], format_name: str) -> bytes:
    """`lines` rendered and saved as JPEG, TIFF, WEBP... (Pillow format names)."""
    page = rendered_page(lines)
    if format_name == "WEBP":
        return _save(page, format_name, lossless=True)
    return _save(page, format_name)


def multipage_tiff(pages: list[list[str]]) -> bytes:
    """A TIFF with one frame per page of lines."""
    frames = [rendered_page(lines) for lines in pages]
    return _save(frames[0], "TIFF", save_all=True, append_images=frames[1:])


def image_only_pdf(pages: list[list[str]]) -> bytes:
    """A scanned-looking PDF: each page one image of rendered text, no text layer."""
    frames = [rendered_page(lines) for lines in pages]
    return _save(frames[0], "PDF", save_all=True, append_images=frames[1:], resolution=150)


def _save(image: Image.Image, format_name: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format_name, **options)
    return buffer.getvalue()


# PDFs written by hand: a text layer (Helvetica, one text object per line), optionally
# encrypted with the standard security handler (RC4, revision 2) under a user password.


def text_pdf(pages: list[str]) -> bytes:
    """A PDF whose pages carry `pages` as a real text layer (lines split on newlines)."""
    return _pdf(pages, password=None)


SAMPLE_PDF_PASSWORD = "secret"


def encrypted_pdf(pages: list[str], password: str = SAMPLE_PDF_PASSWORD) -> bytes:
    """A text PDF encrypted (RC4 40-bit) so that it opens only with `password`."""
    return _pdf(pages, password=password)


_PAD = bytes.fromhex("28bf4e5e4e758a4164004e56fffa01082e2e00b6d0683e802f0ca9fe6453697a")


def _rc4(key: bytes, data: bytes) -> bytes:
    state = list(range(256))
    j = 0
    for i in range(256):
        j = (j + state[i] + key[i % len(key)]) % 256
        state[i], state[j] = state[j], state[i]
    out = bytearray()
    i = j = 0
    for byte in data:
        i = (i + 1) % 256
        j = (j + state[i]) % 256
        state[i], state[j] = state[j], state[i]
        out.append(byte ^ state[(state[i] + state[j]) % 256])
    return bytes(out)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _pdf(pages: list[str], *, password: str | None) -> bytes:
    count = len(pages)
    # Objects: 1 catalog, 2 pages, 3 font, then a page and its content stream per page.
    font_id = 3
    page_ids = [4 + 2 * i for i in range(count)]
    bodies: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: (
            f"<< /Type /Pages /Kids [{' '.join(f'{p} 0 R' for p in page_ids)}] /Count {count} >>"
        ).encode(),
        font_id: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    }
    file_id = hashlib.md5(b"teaim-sample", usedforsecurity=False).digest()
    key = b""
    encrypt = b""
    if password is not None:
        permissions = -4
        owner_key = hashlib.md5(_padded("owner"), usedforsecurity=False).digest()[:5]
        owner_entry = _rc4(owner_key, _padded(password))
        key = hashlib.md5(
            _padded(password) + owner_entry + struct.pack("<i", permissions) + file_id,
            usedforsecurity=False,
        ).digest()[:5]
        user_entry = _rc4(key, _PAD)
        encrypt = (
            f"<< /Filter /Standard /V 1 /R 2 /O <{owner_entry.hex()}> /U <{user_entry.hex()}>"
            f" /P {permissions} >>"
        ).encode()
    for index, text in enumerate(pages):
        page_id, content_id = page_ids[index], page_ids[index] + 1
        bodies[page_id] = (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842]"
            f" /Resources << /Font << /F1 {font_id} 0 R >> >> /Contents {content_id} 0 R >>"
        ).encode()
        lines = [
            f"BT /F1 12 Tf 72 {770 - 16 * row} Td ({_escape(line)}) Tj ET"
            for row, line in enumerate(text.split("\n"))
        ]
        stream = "\n".join(lines).encode("latin-1")
        if password is not None:
            object_key = hashlib.md5(
                key + struct.pack("<I", content_id)[:3] + b"\x00\x00", usedforsecurity=False
            ).digest()[:10]
            stream = _rc4(object_key, stream)
        bodies[content_id] = b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream"
    if password is not None:
        bodies[max(bodies) + 1] = encrypt
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}
    for number in sorted(bodies):
        offsets[number] = len(out)
        out += b"%d 0 obj\n" % number + bodies[number] + b"\nendobj\n"
    size = max(bodies) + 1
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for number in range(1, size):
        out += b"%010d 00000 n \n" % offsets[number]
    trailer = f"<< /Size {size} /Root 1 0 R /ID [<{file_id.hex()}> <{file_id.hex()}>]"
    if password is not None:
        trailer += f" /Encrypt {size - 1} 0 R"
    out += f"trailer\n{trailer} >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def _padded(password: str) -> bytes:
    return (password.encode("latin-1") + _PAD)[:32]


def corrupt_pdf() -> bytes:
    """Starts like a PDF, then is garbage (no objects, no cross-reference table)."""
    return b"%PDF-1.7\n" + bytes(range(256)) * 8 + b"\n%%EOF\n"


def truncated_pdf(pages: list[str]) -> bytes:
    """A text PDF cut off in its middle."""
    whole = text_pdf(pages)
    return whole[: len(whole) // 3]


# Hostile images and archives.


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG whose header declares `width` x `height` 1-bit pixels (a decompression bomb:
    decoding it would need width*height/8 bytes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    # A few rows of zeros: enough to look like the start of real image data.
    rows = zlib.compress(b"\x00" * (1 + (width + 7) // 8) * 4)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


def docx_with_text(paragraphs: list[str], table: list[list[str]] | None = None) -> bytes:
    """A real DOCX (python-docx) with `paragraphs`, then a table of `table`'s rows."""
    document = docx.Document()
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def zip_bomb_docx(inflated_bytes: int = 200 * 1024 * 1024) -> bytes:
    """A valid DOCX plus a member of `inflated_bytes` zeros (a few hundred KiB compressed)."""
    buffer = io.BytesIO(docx_with_text(["A harmless looking document."]))
    block = b"\x00" * (1024 * 1024)
    with (
        zipfile.ZipFile(buffer, "a", compression=zipfile.ZIP_DEFLATED) as archive,
        archive.open("word/media/zeros.bin", "w", force_zip64=True) as member,
    ):
        written = 0
        while written < inflated_bytes:
            part = block[: inflated_bytes - written]
            member.write(part)
            written += len(part)
    return buffer.getvalue()


def many_members_docx(members: int) -> bytes:
    """A valid DOCX plus `members` empty members (a zip of countless tiny entries)."""
    buffer = io.BytesIO(docx_with_text(["Many parts."]))
    with zipfile.ZipFile(buffer, "a") as archive:
        for index in range(members):
            archive.writestr(f"teaim/filler{index}.xml", b"")
    return buffer.getvalue()


def polyglot_png_html() -> bytes:
    """Starts as a PNG signature, goes on as HTML with a script: a file claiming the wrong
    type (named `.html`, sniffed as `image/png`)."""
    return b"\x89PNG\r\n\x1a\n<html><body><script>alert('x')</script>hello</body></html>"


# Text formats.

HIDDEN_CANARIES = (
    "canaryscript",
    "canarystyle",
    "canarytemplate",
    "canarynoscript",
    "canaryhiddenattr",
    "canaryariahidden",
    "canarydisplaynone",
    "canaryvisibility",
    "canaryhiddeninput",
    "canarynested",
)


def html_with_hidden_content(visible: str) -> str:
    """A page showing `visible`, hiding every canary of HIDDEN_CANARIES in another way."""
    return f"""<!doctype html>
<html><head><title>Quarterly plan</title>
<style>.x {{ content: "canarystyle" }}</style>
<script>var secret = "canaryscript";</script></head>
<body>
<h1>Heading</h1>
<p>{visible} &amp; more
<template><p>canarytemplate</p></template>
<noscript>canarynoscript</noscript>
<div hidden>canaryhiddenattr<div hidden>canarynested</div></div>
<span aria-hidden="true">canaryariahidden</span>
<div style="color: red; DISPLAY : none">canarydisplaynone</div>
<p style="visibility:hidden">canaryvisibility</p>
<input type="hidden" value="canaryhiddeninput">
<table><tr><td>cell one<td>cell two</table>
</body></html>
"""


def vtt_transcript(cues: list[str]) -> str:
    """A WebVTT file with one cue per entry."""
    parts = ["WEBVTT", ""]
    for index, cue in enumerate(cues):
        parts += [f"cue-{index}", f"00:00:{index:02d}.000 --> 00:00:{index:02d}.900", cue, ""]
    return "\n".join(parts)


def srt_transcript(cues: list[str]) -> str:
    """A SubRip file with one subtitle per entry."""
    parts: list[str] = []
    for index, cue in enumerate(cues):
        start, end = f"00:00:{index:02d},000", f"00:00:{index:02d},900"
        parts += [str(index + 1), f"{start} --> {end}", cue, ""]
    return "\n".join(parts)


def csv_table(rows: list[list[str]]) -> str:
    """A CSV file of `rows` (quoted where needed, CRLF line ends as Excel writes them)."""
    buffer = io.StringIO(newline="")
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()
