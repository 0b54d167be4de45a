"""The routes whose request body is a file streamed to the blob store, not a JSON command
(and the POSTs that only read, whose answer may be a stream).

They are exempt from the 1 MiB JSON body cap (they stream under BLOB_MAX_BYTES instead) and
the Idempotency-Key layer never buffers their body (decision 0023): the middlewares ask here.
"""

from __future__ import annotations

import re

from starlette.types import Scope

_UPLOAD_PATH = re.compile(r"^/api/projects/[^/]+/artifacts/?$")
# Room for the multipart framing around the file: boundaries, part headers, small fields.
MULTIPART_OVERHEAD_BYTES = 1024 * 1024


def is_streamed_upload(scope: Scope) -> bool:
    """Whether the request is a file upload (`POST /api/projects/{id}/artifacts`)."""
    return scope.get("method") == "POST" and _UPLOAD_PATH.match(scope.get("path", "")) is not None


# POSTs that change nothing (their body is a query): the sign-off package's preview and its
# streamed ZIP. The Idempotency-Key layer lets them through untouched: it would otherwise
# buffer a whole ZIP to store it as the key's answer, and there is no effect to deduplicate.
_READ_ONLY_POST = re.compile(r"^/api/projects/[^/]+/signoff/package/(preview|zip)/?$")


def is_read_only_post(scope: Scope) -> bool:
    """Whether the request is a POST that only reads (its answer is never stored)."""
    return scope.get("method") == "POST" and bool(_READ_ONLY_POST.match(scope.get("path", "")))
