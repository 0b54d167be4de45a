"""Uploads, URL fetches and downloads of documents: their inputs and answers."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, Field, StringConstraints

from interfaces.http.models import In, Name, Tag

Url = Annotated[str, StringConstraints(min_length=1, max_length=2048)]


class FromUrlIn(In):
    """A public URL to fetch as a document (http or https; SSRF-checked)."""

    url: Url
    name: Name | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=32)


class UploadOut(BaseModel):
    """Where an upload (or URL fetch) landed.

    `duplicate`: the project already had these bytes; with `on_duplicate=existing` (the
    default) nothing was recorded and this is that document (`position` 0), with
    `new_version` they were recorded as its next version.
    """

    id: UUID
    position: int
    content_version: int
    duplicate: bool
    name: str
    mime: str = Field(description="The type sniffed from the bytes (what the service trusts).")
    claimed_mime: str | None = Field(description="The type the client (or server) claimed.")
    mime_mismatch: bool = Field(description="Whether the claim contradicts the bytes.")
    size: int
    sha256: str
