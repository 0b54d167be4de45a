"""The scheduler's run log in PostgreSQL: claim a run once, record how it ended, reap the dead.

A claim is the insert of the run's row (unique per job and scheduled time): one process wins,
every other skips. The winner also takes a session advisory lock named after the row and holds
it, on the connection the claim came from, until it records the outcome. A process that dies
mid-run loses its connection and with it the lock, so a row still marked `running` whose lock
is free belongs to a dead process: the reaper marks it `abandoned` (and the job's next run
picks up the work: jobs are idempotent).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from adapters.postgres.database import DatabaseUrl

log = logging.getLogger("teaim.scheduler")

# First key of the two-key advisory locks that mark a live run (the second is a hash of the
# run key). The two-key lock space is apart from the one-key space the migration lock uses.
RUN_LOCK_CLASS = 0x7EA1_5C
# The second key, from a row's columns (or placeholders): the same expression everywhere.
_RUN_LOCK = "{cls}, hashtext({job} || '@' || (extract(epoch FROM {at}) * 1000000)::bigint::text)"
_LOCK_PARAMS = _RUN_LOCK.format(cls="%s", job="%s::text", at="%s::timestamptz")
# A running row whose lock nobody holds (the try succeeds) belongs to a dead session.
_REAP_SQL = (
    "UPDATE scheduler_runs SET outcome = 'abandoned', finished_at = clock_timestamp(),"  # noqa: S608 (constant fragments)
    " error = 'the process running it ended before recording an outcome'"
    " WHERE outcome = 'running' AND pg_try_advisory_xact_lock("
    + _RUN_LOCK.format(cls="%s", job="job_id", at="scheduled_at")
    + ") RETURNING *"
)

_ERROR_LIMIT = 4000


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One row of the run log."""

    job_id: str
    scheduled_at: datetime
    process: str
    outcome: str
    started_at: datetime
    finished_at: datetime | None
    error: str | None
    result: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class JobHistory:
    """A job's newest run and newest failure (either may be missing)."""

    job_id: str
    last_run: RunRecord | None
    last_error: RunRecord | None


class Claim:
    """A run this process won: it holds the connection (and the run's lock) until finished."""

    def __init__(
        self,
        job_id: str,
        scheduled_at: datetime,
        conn: psycopg.Connection[DictRow],
        previous: Mapping[str, Any] | None,
    ) -> None:
        self.job_id = job_id
        self.scheduled_at = scheduled_at
        self.conn = conn
        self.previous_result = previous


class PostgresSchedulerRuns:
    """The run log on its own small pool (owner connections: the table holds no tenant data)."""

    def __init__(self, url: DatabaseUrl, *, max_size: int = 6) -> None:
        # Each running job holds one connection (its lock) for the run's length; the rest
        # serve claims that lose, status reads and the reaper.
        self._pool: ConnectionPool[psycopg.Connection[DictRow]] = ConnectionPool(
            url.libpq(),
            min_size=0,
            max_size=max_size,
            kwargs={"row_factory": dict_row, "application_name": "teaim-scheduler"},
            connection_class=psycopg.Connection[DictRow],
            open=True,
        )

    def close(self) -> None:
        """Close the pool."""
        self._pool.close()

    # Claiming and finishing -------------------------------------------------------------

    def claim(self, job_id: str, scheduled_at: datetime, process: str) -> Claim | None:
        """Insert the run's row and lock it; None when another process already has the run."""
        conn = self._pool.getconn()
        previous: DictRow | None = None
        try:
            with conn.transaction():
                row = conn.execute(
                    "INSERT INTO scheduler_runs (job_id, scheduled_at, process, outcome)"
                    " VALUES (%s, %s, %s, 'running')"
                    " ON CONFLICT (job_id, scheduled_at) DO NOTHING RETURNING job_id",
                    (job_id, scheduled_at, process[:200]),
                ).fetchone()
                if row is not None:
                    # Taken before the row commits, so no reaper ever sees it running unlocked.
                    locked = conn.execute(
                        f"SELECT pg_try_advisory_lock({_LOCK_PARAMS}) AS locked",
                        (RUN_LOCK_CLASS, job_id, scheduled_at),
                    ).fetchone()
                    if locked is None or not locked["locked"]:
                        # Only a hash collision with another live run: the run goes ahead,
                        # and at worst the reaper calls it abandoned until it finishes.
                        log.warning("run %s@%s shares its lock with another", job_id, scheduled_at)
                    previous = conn.execute(
                        "SELECT result FROM scheduler_runs WHERE job_id = %s AND outcome = 'ok'"
                        " AND result IS NOT NULL ORDER BY scheduled_at DESC LIMIT 1",
                        (job_id,),
                    ).fetchone()
        except BaseException:
            _discard(self._pool, conn)
            raise
        if row is None:
            self._pool.putconn(conn)
            return None
        return Claim(job_id, scheduled_at, conn, None if previous is None else previous["result"])

    def finish(
        self,
        claim: Claim,
        *,
        outcome: str,
        error: str | None = None,
        result: Mapping[str, Any] | None = None,
    ) -> None:
        """Record how the run ended, release its lock and give the connection back."""
        conn = claim.conn
        try:
            with conn.transaction():
                # Unconditional: if a lost connection let the reaper call the run abandoned
                # while it went on, the real outcome is still the truer record.
                conn.execute(
                    "UPDATE scheduler_runs SET outcome = %s, finished_at = clock_timestamp(),"
                    " error = %s, result = %s WHERE job_id = %s AND scheduled_at = %s",
                    (
                        outcome,
                        None if error is None else error[:_ERROR_LIMIT],
                        None if result is None else Jsonb(dict(result)),
                        claim.job_id,
                        claim.scheduled_at,
                    ),
                )
                conn.execute(
                    f"SELECT pg_advisory_unlock({_LOCK_PARAMS})",
                    (RUN_LOCK_CLASS, claim.job_id, claim.scheduled_at),
                )
        except BaseException:
            # The row stays `running` with its lock gone with the connection: the reaper
            # will call it abandoned.
            _discard(self._pool, conn)
            raise
        self._pool.putconn(conn)

    def record_missed(self, job_id: str, scheduled_at: datetime, process: str, detail: str) -> bool:
        """Record a run no process started in time (unless one did); whether this recorded it."""
        with self._pool.connection() as conn, conn.transaction():
            row = conn.execute(
                "INSERT INTO scheduler_runs"
                " (job_id, scheduled_at, process, outcome, finished_at, error)"
                " VALUES (%s, %s, %s, 'missed', clock_timestamp(), %s)"
                " ON CONFLICT (job_id, scheduled_at) DO NOTHING RETURNING job_id",
                (job_id, scheduled_at, process[:200], detail[:_ERROR_LIMIT]),
            ).fetchone()
        return row is not None

    # Housekeeping -----------------------------------------------------------------------

    def reap_abandoned(self) -> list[RunRecord]:
        """Mark `abandoned` every run still `running` whose process is gone (its lock free)."""
        with self._pool.connection() as conn, conn.transaction():
            rows = conn.execute(
                _REAP_SQL,
                (RUN_LOCK_CLASS,),
            ).fetchall()
        return [_record(row) for row in rows]

    def prune(self, older_than: timedelta) -> int:
        """Delete finished runs older than `older_than`, keeping each job's newest and newest ok."""
        with self._pool.connection() as conn, conn.transaction():
            cur = conn.execute(
                "DELETE FROM scheduler_runs AS r"
                " WHERE r.outcome <> 'running' AND r.scheduled_at < clock_timestamp() - %s"
                " AND (r.job_id, r.scheduled_at) NOT IN ("
                "   SELECT DISTINCT ON (job_id) job_id, scheduled_at FROM scheduler_runs"
                "   ORDER BY job_id, scheduled_at DESC)"
                " AND (r.job_id, r.scheduled_at) NOT IN ("
                "   SELECT DISTINCT ON (job_id) job_id, scheduled_at FROM scheduler_runs"
                "   WHERE outcome = 'ok' ORDER BY job_id, scheduled_at DESC)",
                (older_than,),
            )
            return cur.rowcount

    # Reads ------------------------------------------------------------------------------

    def histories(self, job_ids: Sequence[str]) -> list[JobHistory]:
        """Each job's newest run and newest failure, in the order asked."""
        with self._pool.connection() as conn, conn.transaction():
            last = {
                row["job_id"]: _record(row)
                for row in conn.execute(
                    "SELECT DISTINCT ON (job_id) * FROM scheduler_runs WHERE job_id = ANY(%s)"
                    " ORDER BY job_id, scheduled_at DESC",
                    (list(job_ids),),
                ).fetchall()
            }
            errors = {
                row["job_id"]: _record(row)
                for row in conn.execute(
                    "SELECT DISTINCT ON (job_id) * FROM scheduler_runs WHERE job_id = ANY(%s)"
                    " AND outcome IN ('failed', 'abandoned', 'missed', 'timed_out')"
                    " ORDER BY job_id, scheduled_at DESC",
                    (list(job_ids),),
                ).fetchall()
            }
        return [JobHistory(job_id, last.get(job_id), errors.get(job_id)) for job_id in job_ids]

    def runs(self, job_id: str, *, limit: int = 1000) -> list[RunRecord]:
        """The job's newest runs, oldest first."""
        with self._pool.connection() as conn, conn.transaction():
            rows = conn.execute(
                "SELECT * FROM (SELECT * FROM scheduler_runs WHERE job_id = %s"
                " ORDER BY scheduled_at DESC LIMIT %s) AS newest ORDER BY scheduled_at",
                (job_id, limit),
            ).fetchall()
        return [_record(row) for row in rows]


def _discard(
    pool: ConnectionPool[psycopg.Connection[DictRow]], conn: psycopg.Connection[DictRow]
) -> None:
    # Closing drops the session, and with it any advisory lock it held.
    try:
        conn.close()
    finally:
        pool.putconn(conn)


def _record(row: Mapping[str, Any]) -> RunRecord:
    return RunRecord(
        job_id=row["job_id"],
        scheduled_at=row["scheduled_at"],
        process=row["process"],
        outcome=row["outcome"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        error=row["error"],
        result=row["result"],
    )
