"""HTTP conditional and range requests for downloads (RFC 9110 13.1.2, 14): pure functions.

Hand-written because Starlette's `FileResponse` does ranges only for local files: the S3
store streams from `get_object`, so both stores share this one small parser. One range only;
a multi-range request is answered whole (200), which RFC 9110 allows.
"""

from __future__ import annotations

import re
from urllib.parse import quote

_SINGLE = re.compile(r"^bytes=(\d{0,18})-(\d{0,18})$")


class RangeNotSatisfiableError(Exception):
    """The range starts past the end (answer 416 with `Content-Range: bytes */size`)."""


def wanted_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) byte to send, inclusive; None: send the whole representation.

    A header that does not parse, or names several ranges, is ignored (RFC 9110 14.2).
    """
    if header is None:
        return None
    match = _SINGLE.match(header.strip().replace(" ", ""))
    if match is None:
        return None
    first, last = match.group(1), match.group(2)
    if not first:
        if not last:
            return None
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiableError
        return max(0, size - suffix), size - 1
    start = int(first)
    end = size - 1 if not last else min(int(last), size - 1)
    if last and int(last) < start:
        return None  # invalid: ignored
    if start >= size:
        raise RangeNotSatisfiableError
    return start, end


def etag_matches(header: str | None, etag: str) -> bool:
    """Whether an If-None-Match (weak comparison) or If-Range names `etag` (or is `*`)."""
    if header is None:
        return False
    for candidate in header.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


def attachment(name: str) -> str:
    """`Content-Disposition: attachment` with an ASCII fallback and the RFC 6266 `filename*`."""
    fallback = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
