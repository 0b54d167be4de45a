"""Alembic environment: migrates the database it is explicitly handed, and no other."""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine, pool, text

from adapters.postgres.database import DatabaseUrl

# Any fixed 64-bit number, shared by every process that migrates this database.
_MIGRATION_LOCK_KEY = 0x7E_A1_0000_0001


def _database_url() -> DatabaseUrl:
    config = context.config
    url = (
        config.attributes.get("sqlalchemy.url")
        or config.get_main_option("sqlalchemy.url")
        or context.get_x_argument(as_dictionary=True).get("url")
    )
    if not url:
        msg = (
            "no database URL given to Alembic: migrate with `teaim migrate` "
            "(adapters.postgres.migrate.upgrade) or run `alembic -x url=postgresql://...`"
        )
        raise RuntimeError(msg)
    return DatabaseUrl.parse(str(url))


def _run_offline() -> None:
    context.configure(
        url=_database_url().sqlalchemy(),
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_online() -> None:
    engine = create_engine(_database_url().sqlalchemy(), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            context.configure(connection=connection, transaction_per_migration=False)
            with context.begin_transaction():
                # Two processes starting at once (several workers, a CLI next to a server)
                # must not both apply the same revision: the second waits, then finds head.
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
                )
                context.run_migrations()
    finally:
        engine.dispose()


# Only the command line reads alembic.ini; the service's own logging is left alone.
if context.config.config_file_name is not None:
    fileConfig(context.config.config_file_name, disable_existing_loggers=False)

if context.is_offline_mode():
    _run_offline()
else:
    _run_online()
