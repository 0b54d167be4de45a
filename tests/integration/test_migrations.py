"""Alembic owns the schema: upgrade, downgrade, the migrated-check, and the shape it builds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.migrate import (
    UnmigratedDatabaseError,
    assert_migrated,
    current_revision,
    downgrade,
    head_revision,
    upgrade,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
# The core every later migration builds on (later ones add read models).
OUR_TABLES = {"teaim_events", "teaim_snapshots", "idempotency_keys"}


MIGRATIONS = Path(__file__).resolve().parents[2] / "adapters/postgres/migrations/versions"


def tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
    return {name for (name,) in rows} - {"alembic_version"}


def test_the_migrations_form_one_line_ending_at_the_head() -> None:
    revisions = {path.stem for path in MIGRATIONS.glob("[0-9][0-9][0-9][0-9]_*.py")}
    assert head_revision() == max(revisions)
    assert head_revision().startswith(f"{len(revisions):04d}_")


def test_upgrade_takes_an_empty_database_to_head(empty_database_url: str) -> None:
    assert current_revision(empty_database_url) is None

    upgrade(empty_database_url)

    assert current_revision(empty_database_url) == head_revision()
    assert tables(empty_database_url) >= OUR_TABLES
    with psycopg.connect(empty_database_url) as conn:
        assert conn.execute("SELECT '[1,2,3]'::vector(3)").fetchone() is not None


def test_assert_migrated_names_the_database_both_revisions_and_the_fix(
    empty_database_url: str,
) -> None:
    with pytest.raises(UnmigratedDatabaseError) as raised:
        assert_migrated(empty_database_url)

    message = str(raised.value)
    assert DatabaseUrl.parse(empty_database_url).dbname in message
    assert "is at revision none" in message
    assert f"code expects {head_revision()}" in message
    assert "run `teaim migrate`" in message


def test_assert_migrated_accepts_a_database_at_head(database_url: str) -> None:
    assert_migrated(database_url)


def test_downgrade_to_base_and_upgrade_again(database_url: str) -> None:
    downgrade(database_url, "base")

    assert current_revision(database_url) is None
    assert tables(database_url) == set()
    with pytest.raises(UnmigratedDatabaseError):
        assert_migrated(database_url)

    upgrade(database_url)

    assert_migrated(database_url)
    assert tables(database_url) >= OUR_TABLES


def alembic(*args: str) -> list[str]:
    return [sys.executable, "-m", "alembic", *args]


def test_processes_migrating_at_once_apply_each_revision_once(empty_database_url: str) -> None:
    # Separate processes, as in production: Alembic's context is process-global, so threads
    # of one process cannot migrate concurrently anyway.
    upgrades = [
        subprocess.Popen(
            alembic("-x", f"url={empty_database_url}", "upgrade", "head"),
            cwd=REPO_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    failures: list[str] = []
    for process in upgrades:
        _, stderr = process.communicate(timeout=120)
        if process.returncode != 0:
            failures.append(stderr)

    assert failures == []
    assert_migrated(empty_database_url)


def test_the_alembic_command_line_migrates_the_url_it_is_given(empty_database_url: str) -> None:
    subprocess.run(
        alembic("-x", f"url={empty_database_url}", "upgrade", "head"),
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
    )

    assert_migrated(empty_database_url)


def test_the_alembic_command_line_refuses_to_guess_a_database() -> None:
    result = subprocess.run(
        alembic("current"),
        cwd=REPO_ROOT,
        check=False,
        capture_output=True,
        text=True,
    )

    assert result.returncode != 0
    assert "no database URL" in result.stderr


def test_event_ids_are_assigned_by_the_recorder_not_by_a_sequence(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        columns: dict[str, str | None] = dict(
            conn.execute(
                "SELECT column_name, column_default FROM information_schema.columns"
                " WHERE table_name = 'teaim_events'"
            ).fetchall()
        )
        sequences = conn.execute("SELECT count(*) FROM pg_sequences").fetchone()

    assert set(columns) == {
        "notification_id",
        "originator_id",
        "originator_version",
        "topic",
        "state",
        "org_id",
        "project_id",
        "recorded_at",
        "content_hash",
        "chain_hash",
    }
    assert columns["notification_id"] is None
    assert sequences == (0,)


def test_an_event_without_org_is_refused_by_the_table_itself(database_url: str) -> None:
    with (
        psycopg.connect(database_url) as conn,
        pytest.raises(psycopg.errors.NotNullViolation, match='column "org_id"'),
    ):
        conn.execute(
            "INSERT INTO teaim_events"
            " (notification_id, originator_id, originator_version, topic, state)"
            " VALUES (1, gen_random_uuid(), 1, 't', '')"
        )
