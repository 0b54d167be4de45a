"""`teaim projections status` shows halted orgs; `resume NAME --org ORG` resumes one."""

from __future__ import annotations

from click.testing import CliRunner

from adapters.postgres.projection_runner import ProjectionRunner
from interfaces.cli import main
from projections.audit import AuditProjection
from tests.api.conftest import Api
from tests.support.catch_up import run_to_head
from tests.support.poison import event_at, poisoned


def cli(api: Api, *args: str) -> str:
    result = CliRunner().invoke(
        main, list(args), env={"DATABASE_URL": api.database_url}, catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_status_names_the_halted_org_and_resume_applies_its_held_events(api: Api) -> None:
    sick, well = api.new_org("Sick"), api.new_org("Well")
    api.create_project("olive", well)
    poison = api.max_position()
    api.create_project("olive", sick)
    projection = poisoned(AuditProjection(), event_at(poison + 1))
    runner = ProjectionRunner(projection, api.runtime.database.url)
    run_to_head(api.database_url, runner)

    status = cli(api, "projections", "status")
    (line,) = [line for line in status.splitlines() if "halted org" in line]
    assert str(sick) in line
    assert f"from position {poison + 1}" in line
    assert "poisoned handler" in line
    assert str(well) not in status

    assert "was not halted" in cli(api, "projections", "resume", "audit", "--org", str(well))
    projection.broken = False
    assert "resume requested" in cli(api, "projections", "resume", "audit", "--org", str(sick))
    run_to_head(api.database_url, runner)
    assert "halted org" not in cli(api, "projections", "status")
