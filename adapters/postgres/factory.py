"""The eventsourcing persistence factory the application is configured with (PERSISTENCE_MODULE)."""

from __future__ import annotations

from eventsourcing.postgres import PostgresFactory

from adapters.postgres.recorder import GroupCommitRecorder


class TeaimPostgresFactory(PostgresFactory):
    """PostgreSQL persistence whose application recorder group-commits stamped events."""

    application_recorder_class = GroupCommitRecorder
