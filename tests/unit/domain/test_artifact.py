"""Artifact rules: validation, tenant-prefixed blob keys, tags, rename/retag/delete."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest

from domain.artifact import (
    MAX_SIZE,
    MAX_TAGS,
    Artifact,
    Content,
    ContentSource,
    ExtractionMethod,
    normalise_tags,
)
from domain.blob_keys import blob_prefix
from domain.errors import (
    InvalidValueError,
    NotFoundError,
    PermissionDeniedError,
    RuleViolationError,
)
from domain.roles import Role
from domain.stamps import Stamp
from tests.support.stored import position
from tests.unit.conftest import World, make_stamp

SHA = "0123456789abcdef" * 4


def register(stamp: Stamp | None = None, **overrides: Any) -> Artifact:
    fields: dict[str, Any] = {
        "name": "Spec.pdf",
        "mime": "application/pdf",
        "size": 1024,
        "sha256": SHA,
        "tags": [],
    }
    fields.update(overrides)
    return Artifact.register(
        artifact_id=uuid4(), stamp=stamp or make_stamp(project_id=uuid4()), **fields
    )


def test_registration_derives_a_tenant_and_project_prefixed_blob_key() -> None:
    stamp = make_stamp(project_id=uuid4())
    artifact = register(stamp)
    prefix = f"org/{stamp.org_id}/project/{stamp.project_id}/"
    assert artifact.blob_key.startswith(prefix)
    assert artifact.blob_key == f"{prefix}artifacts/{artifact.id}"
    assert artifact.project_id == stamp.project_id
    assert not artifact.deleted


def test_mime_and_hash_are_lower_cased() -> None:
    artifact = register(mime="Application/PDF", sha256=SHA.upper())
    assert (artifact.mime, artifact.sha256) == ("application/pdf", SHA)


@pytest.mark.parametrize(
    "overrides",
    [
        {"name": " "},
        {"mime": "pdf"},
        {"mime": "application/"},
        {"mime": "text/plain; charset=utf-8"},
        {"size": -1},
        {"size": MAX_SIZE + 1},
        {"sha256": "abc"},
        {"sha256": "g" * 64},
        {"tags": [""]},
        {"tags": ["-leading-dash"]},
        {"tags": ["x" * 49]},
        {"tags": [f"t{i}" for i in range(MAX_TAGS + 1)]},
    ],
)
def test_invalid_registrations_are_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(InvalidValueError):
        register(**overrides)


def test_size_bounds_are_inclusive() -> None:
    assert register(size=0).size == 0
    assert register(size=MAX_SIZE).size == MAX_SIZE


def test_an_artifact_needs_a_project() -> None:
    with pytest.raises(InvalidValueError, match="an artifact belongs to a project"):
        register(make_stamp(project_id=None))


def test_tags_are_trimmed_lower_cased_deduplicated_and_sorted() -> None:
    assert normalise_tags([" Spec ", "spec", "B", "a:b/c-d.e"]) == ["a:b/c-d.e", "b", "spec"]
    assert register(tags=["Zeta", "alpha", "ALPHA"]).tags == ["alpha", "zeta"]
    assert normalise_tags([f"t{i}" for i in range(MAX_TAGS)]) == sorted(
        f"t{i}" for i in range(MAX_TAGS)
    )


def test_rename_retag_and_delete() -> None:
    stamp = make_stamp(project_id=uuid4())
    artifact = register(stamp)
    artifact.collect_events()
    artifact.rename(name=" Spec.pdf ", stamp=stamp)
    artifact.retag(tags=[], stamp=stamp)
    assert artifact.collect_events() == []  # nothing changed
    artifact.rename(name="Spec v2.pdf", stamp=stamp)
    artifact.retag(tags=["Final"], stamp=stamp)
    artifact.delete(stamp=stamp)
    assert (artifact.name, artifact.tags, artifact.deleted) == ("Spec v2.pdf", ["final"], True)
    assert [type(e).__name__ for e in artifact.collect_events()] == ["Renamed", "Tagged", "Deleted"]


def test_a_deleted_artifact_refuses_changes() -> None:
    stamp = make_stamp(project_id=uuid4())
    artifact = register(stamp)
    artifact.delete(stamp=stamp)
    artifact.collect_events()
    with pytest.raises(RuleViolationError, match="artifact was deleted"):
        artifact.rename(name="New", stamp=stamp)
    with pytest.raises(RuleViolationError, match="artifact was deleted"):
        artifact.retag(tags=["x"], stamp=stamp)
    with pytest.raises(RuleViolationError, match="artifact was deleted"):
        artifact.delete(stamp=stamp)
    assert artifact.collect_events() == []


def test_registration_through_the_application_uses_the_callers_tenant(world: World) -> None:
    result = world.app.register_artifact(
        ctx=world.alice,
        project_id=world.project_id,
        name="Spec",
        mime="text/plain",
        size=3,
        sha256=SHA,
        tags=["A"],
    )
    artifact = world.app.get_artifact(
        ctx=world.alice, project_id=world.project_id, artifact_id=result.id
    )
    assert artifact.blob_key.startswith(f"org/{world.org_id}/project/{world.project_id}/")
    assert artifact.tags == ["a"]


def test_deleting_needs_the_delete_permission(world: World) -> None:
    bob = world.member("bob", Role.MEMBER)
    artifact_id = world.app.register_artifact(
        ctx=bob,
        project_id=world.project_id,
        name="N",
        mime="text/plain",
        size=1,
        sha256=SHA,
        tags=[],
    ).id
    with pytest.raises(
        PermissionDeniedError, match=r"your role \(member\) does not allow delete_artifact"
    ):
        world.app.delete_artifact(ctx=bob, project_id=world.project_id, artifact_id=artifact_id)
    world.app.update_artifact(
        ctx=bob, project_id=world.project_id, artifact_id=artifact_id, name="Renamed"
    )
    world.app.delete_artifact(ctx=world.alice, project_id=world.project_id, artifact_id=artifact_id)
    before = position(world.app)
    with pytest.raises(RuleViolationError, match="artifact was deleted"):
        world.app.update_artifact(
            ctx=bob, project_id=world.project_id, artifact_id=artifact_id, tags=["x"]
        )
    assert position(world.app) == before


def test_an_artifact_of_another_project_is_not_found(world: World) -> None:
    other = world.app.create_project(ctx=world.alice, code="OTHER", name="Other").id
    artifact_id = world.app.register_artifact(
        ctx=world.alice, project_id=other, name="N", mime="text/plain", size=1, sha256=SHA, tags=[]
    ).id
    with pytest.raises(NotFoundError, match="artifact not found"):
        world.app.get_artifact(
            ctx=world.alice, project_id=world.project_id, artifact_id=artifact_id
        )
    with pytest.raises(NotFoundError, match="artifact not found"):
        world.app.delete_artifact(
            ctx=world.alice, project_id=world.project_id, artifact_id=artifact_id
        )


def _uploaded() -> tuple[Artifact, Stamp]:
    stamp = make_stamp(project_id=uuid4())
    assert stamp.project_id is not None
    content = Content(
        blob_key=f"{blob_prefix(stamp.org_id, stamp.project_id)}{uuid4()}__a.pdf",
        mime="application/pdf",
        claimed_mime="application/pdf",
        size=10,
        sha256="ab" * 32,
        source=ContentSource.UPLOAD,
    )
    return Artifact.upload(
        artifact_id=uuid4(), name="a.pdf", content=content, tags=[], stamp=stamp
    ), stamp


def test_only_a_document_with_text_can_be_published() -> None:
    artifact, stamp = _uploaded()
    with pytest.raises(RuleViolationError, match="text was extracted"):
        artifact.publish(stamp=stamp)
    artifact.record_ocr_needed(
        job_id=uuid4(), reason="ocr_empty", detail="", page_count=1, stamp=stamp
    )
    with pytest.raises(RuleViolationError, match="text was extracted"):
        artifact.publish(stamp=stamp)
    artifact.resolve_ocr(pages=["typed"], stamp=stamp)
    artifact.publish(stamp=stamp)
    assert artifact.published


@pytest.mark.parametrize("how", ["extracted", "typed"])
def test_new_text_takes_a_published_document_out_of_the_marketplace(how: str) -> None:
    artifact, stamp = _uploaded()
    artifact.record_text(
        job_id=uuid4(), method=ExtractionMethod.PDF_TEXT, pages=["seen"], stamp=stamp
    )
    artifact.publish(stamp=stamp)
    if how == "extracted":
        artifact.record_text(
            job_id=uuid4(), method=ExtractionMethod.PDF_TEXT, pages=["new"], stamp=stamp
        )
    else:
        artifact.record_ocr_needed(
            job_id=uuid4(), reason="ocr_empty", detail="", page_count=1, stamp=stamp
        )
        artifact.resolve_ocr(pages=["typed by a member"], stamp=stamp)
    assert not artifact.published
    kinds = [type(e).__name__ for e in artifact.collect_events()]
    assert kinds[-2] == "Unpublished"
