"""`teaim artifacts reingest`: one document, a project's, or an org's in a state, with progress."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import pytest
from click.testing import CliRunner

from application.ingestion_ports import ExtractedText, ExtractionRefused, OcrNeeded
from domain.artifact import ExtractionMethod
from interfaces.cli import main
from tests.api.conftest import Api
from tests.support.ingest_doubles import IngestRig

SCAN = OcrNeeded("ocr_empty", "no text found", 1)
REFUSED = ExtractionRefused("corrupt_pdf", "bad xref")
TEXT = ExtractedText(ExtractionMethod.TEXT, ["words"])
REQUESTED = "Artifact.ReingestRequested"


def cli(api: Api, *args: str, code: int = 0) -> tuple[str, str]:
    result = CliRunner().invoke(
        main, list(args), env={"DATABASE_URL": api.database_url}, catch_exceptions=False
    )
    assert result.exit_code == code, result.output
    return result.stdout, result.stderr


@pytest.fixture
def rig(api: Api, tmp_path: Path) -> IngestRig:
    return IngestRig(api.runtime.app, tmp_path)


def requested(api: Api, artifact: UUID) -> int:
    return sum(topic.endswith(REQUESTED) for topic in api.topics_of(artifact))


def test_one_document_is_reingested_as_the_service(api: Api, rig: IngestRig) -> None:
    org = api.new_org()
    project = api.create_project("olive", org)
    doc = rig.ingest(org, project, TEXT)

    out, err = cli(api, "artifacts", "reingest", str(doc), "--project", str(project))

    assert requested(api, doc) == 1
    assert api.events_of(doc)[-1].actor == "service:internal"
    assert "requested 1 of 1 documents" in out
    assert "reingest: 1/1 visited, 1 requested" in err
    (job,) = rig.react(doc)  # the workers do the rest
    assert job.artifact_id == doc


def test_an_orgs_documents_in_a_state_are_reingested_and_no_others(
    api: Api, rig: IngestRig
) -> None:
    org, other = api.new_org(), api.new_org("Other")
    first, second = api.create_project("olive", org), api.create_project("olive", org)
    elsewhere = api.create_project("olive", other)
    scans = [rig.ingest(org, first, SCAN), rig.ingest(org, second, SCAN)]
    failed = rig.ingest(org, first, REFUSED)
    indexed = rig.ingest(org, second, TEXT)
    foreign = rig.ingest(other, elsewhere, SCAN)
    api.catch_up()

    out, err = cli(api, "artifacts", "reingest", "--org", str(org), "--state", "needs_ocr")

    assert [requested(api, scan) for scan in scans] == [1, 1]
    assert requested(api, failed) == requested(api, indexed) == requested(api, foreign) == 0
    assert "requested 2 of 2 documents" in out
    assert "reingest: 2/2 visited" in err

    cli(api, "artifacts", "reingest", "--project", str(first))  # any state: every document
    assert (requested(api, scans[0]), requested(api, failed)) == (2, 1)
    assert requested(api, scans[1]) == 1


def test_usage_errors_and_a_project_of_another_org(api: Api) -> None:
    org, other = api.new_org(), api.new_org("Other")
    project = api.create_project("olive", org)
    cli(api, "artifacts", "reingest", code=2)
    _, err = cli(
        api, "artifacts", "reingest", "--project", str(project), "--org", str(other), code=1
    )
    assert f"project {project} not found" in err
