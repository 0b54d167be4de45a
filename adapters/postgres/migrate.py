"""Bring a database's schema to what this code expects, and refuse to run against any other."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

from adapters.postgres.database import DatabaseUrl

_SCRIPT_LOCATION = Path(__file__).resolve().parent / "migrations"


class UnmigratedDatabaseError(Exception):
    """The database's schema revision is not the one this code was written against."""


def upgrade(url: str, revision: str = "heads") -> None:
    """Apply every migration up to `revision` (default: the newest)."""
    command.upgrade(_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    """Revert migrations down to `revision` (default: an empty schema)."""
    command.downgrade(_config(url), revision)


def head_revision() -> str:
    """The revision this code expects."""
    heads = ScriptDirectory.from_config(_config(None)).get_heads()
    if not heads:
        raise RuntimeError(f"no migrations found in {_SCRIPT_LOCATION}")
    return "+".join(sorted(heads))


def current_revision(url: str) -> str | None:
    """The revision the database is at, or None when it has never been migrated."""
    engine = create_engine(DatabaseUrl.parse(url).sqlalchemy(), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            heads = MigrationContext.configure(connection).get_current_heads()
            return "+".join(sorted(heads)) or None
    finally:
        engine.dispose()


def assert_migrated(url: str) -> None:
    """Raise UnmigratedDatabaseError unless the database is exactly at the head revision."""
    current = current_revision(url)
    expected = head_revision()
    if current != expected:
        where = DatabaseUrl.parse(url).redacted()
        msg = (
            f"database at {where} is at revision {current or 'none (never migrated)'}, "
            f"code expects {expected}: run `teaim migrate`"
        )
        raise UnmigratedDatabaseError(msg)


def _config(url: str | None) -> Config:
    # Built in code rather than read from alembic.ini, so migrating works from any working
    # directory and from an installed package.
    config = Config()
    config.set_main_option("script_location", str(_SCRIPT_LOCATION))
    if url is not None:
        # Through attributes, not a main option: configparser would read any '%' in a
        # password as interpolation.
        config.attributes["sqlalchemy.url"] = url
    return config
