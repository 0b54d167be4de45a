"""Artifact: a document registered against a project (upload and ingestion come later)."""

from __future__ import annotations

import re
from dataclasses import field
from uuid import UUID

from domain.base import TeaimAggregate
from domain.errors import InvalidValueError, RuleViolationError
from domain.project import validate_name
from domain.stamps import Stamp

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MIME = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")
_TAG = re.compile(r"^[\w][\w .:/-]{0,47}$")
MAX_TAGS = 32
MAX_SIZE = 5 * 1024**3


def blob_key_for(org_id: UUID, project_id: UUID, artifact_id: UUID) -> str:
    """Where the artifact's bytes live; tenant and project lead every key."""
    return f"org/{org_id}/project/{project_id}/artifacts/{artifact_id}"


def normalise_tags(tags: list[str]) -> list[str]:
    """Trimmed, lower-cased, de-duplicated and sorted tags."""
    cleaned = sorted({t.strip().lower() for t in tags})
    if len(cleaned) > MAX_TAGS:
        raise InvalidValueError(f"at most {MAX_TAGS} tags")
    for tag in cleaned:
        if not _TAG.fullmatch(tag):
            raise InvalidValueError(
                "tags are 1-48 word characters, spaces, '.', ':', '/', '-'", tag=tag
            )
    return cleaned


class Artifact(TeaimAggregate):
    """A project document's identity, content hash, blob location and tags."""

    project_id: UUID = field(init=False)
    name: str = field(init=False)
    mime: str = field(init=False)
    size: int = field(init=False)
    sha256: str = field(init=False)
    blob_key: str = field(init=False)
    tags: list[str] = field(init=False)
    deleted: bool = field(init=False)

    class Registered(TeaimAggregate.Created):
        name: str
        mime: str
        size: int
        sha256: str
        blob_key: str
        tags: list[str]

        def apply(self, artifact: Artifact) -> None:
            assert self.project_id is not None
            artifact.project_id = self.project_id
            artifact.name = self.name
            artifact.mime = self.mime
            artifact.size = self.size
            artifact.sha256 = self.sha256
            artifact.blob_key = self.blob_key
            artifact.tags = list(self.tags)
            artifact.deleted = False

    class Renamed(TeaimAggregate.Event):
        name: str

        def apply(self, artifact: Artifact) -> None:
            artifact.name = self.name

    class Tagged(TeaimAggregate.Event):
        tags: list[str]

        def apply(self, artifact: Artifact) -> None:
            artifact.tags = list(self.tags)

    class Deleted(TeaimAggregate.Event):
        def apply(self, artifact: Artifact) -> None:
            artifact.deleted = True

    @classmethod
    def register(
        cls,
        *,
        artifact_id: UUID,
        name: str,
        mime: str,
        size: int,
        sha256: str,
        tags: list[str],
        stamp: Stamp,
    ) -> Artifact:
        """Register a document in the stamp's project."""
        if stamp.project_id is None:
            raise InvalidValueError("an artifact belongs to a project")
        if not _MIME.fullmatch(mime.lower()):
            raise InvalidValueError("mime must look like type/subtype", mime=mime)
        if not 0 <= size <= MAX_SIZE:
            raise InvalidValueError(f"size must be between 0 and {MAX_SIZE} bytes")
        if not _SHA256.fullmatch(sha256.lower()):
            raise InvalidValueError("sha256 must be 64 hex digits")
        artifact: Artifact = cls._create_stamped(
            cls.Registered,
            id=artifact_id,
            stamp=stamp,
            name=validate_name(name),
            mime=mime.lower(),
            size=size,
            sha256=sha256.lower(),
            blob_key=blob_key_for(stamp.org_id, stamp.project_id, artifact_id),
            tags=normalise_tags(tags),
        )
        return artifact

    def rename(self, *, name: str, stamp: Stamp) -> None:
        """Give the document a new display name."""
        self._require_present()
        cleaned = validate_name(name)
        if cleaned != self.name:
            self._trigger(self.Renamed, stamp, name=cleaned)

    def retag(self, *, tags: list[str], stamp: Stamp) -> None:
        """Replace the document's tags."""
        self._require_present()
        cleaned = normalise_tags(tags)
        if cleaned != self.tags:
            self._trigger(self.Tagged, stamp, tags=cleaned)

    def delete(self, *, stamp: Stamp) -> None:
        """Delete the document (its history stays in the log)."""
        self._require_present()
        self._trigger(self.Deleted, stamp)

    def _require_present(self) -> None:
        if self.deleted:
            raise RuleViolationError("artifact was deleted", artifact_id=self.id)
