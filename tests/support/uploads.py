"""Upload a document through the API as a client would: multipart/form-data, field `file`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import httpx

PDF_BYTES = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def upload(
    client: httpx.Client,
    project: object,
    headers: Mapping[str, str],
    *,
    filename: str = "spec.pdf",
    data: bytes = PDF_BYTES,
    content_type: str | None = "application/pdf",
    name: str | None = None,
    tags: Sequence[str] = (),
    query: str = "",
) -> httpx.Response:
    """POST the file to `/api/projects/{project}/artifacts` (the answer, unchecked)."""
    fields: dict[str, str | list[str]] = {}
    if tags:
        fields["tags"] = list(tags)
    if name is not None:
        fields["name"] = name
    file = (filename, data) if content_type is None else (filename, data, content_type)
    return client.post(
        f"/api/projects/{project}/artifacts{query}",
        data=fields,
        files={"file": file},
        headers=dict(headers),
    )
