"""One database location, rendered for each client: libpq, SQLAlchemy and eventsourcing."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote, urlencode

import psycopg
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy import URL, Engine, create_engine

# The eventsourcing factory is named by topic rather than imported, so that reading a URL does
# not drag the recorder (and the application layer) in.
PERSISTENCE_MODULE_TOPIC = "adapters.postgres.factory:TeaimPostgresFactory"


@dataclass(frozen=True)
class DatabaseUrl:
    """A PostgreSQL location: TCP host or unix-socket directory, port, database and credentials."""

    host: str
    dbname: str
    user: str
    password: str = field(default="", repr=False)
    port: int = 5432
    # Further libpq parameters (sslmode, application_name...), kept in URL order.
    params: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, url: str) -> DatabaseUrl:
        """Read a libpq URI, a SQLAlchemy-style URL (`postgresql+driver://`) or a key=value DSN."""
        conninfo = _strip_driver(url.strip())
        try:
            parts: dict[str, Any] = conninfo_to_dict(conninfo)
        except psycopg.ProgrammingError as e:
            raise ValueError(f"not a PostgreSQL URL: {_redacted(url)}: {e}") from None
        missing = [name for name in ("host", "dbname", "user") if not parts.get(name)]
        if missing:
            raise ValueError(f"database URL {_redacted(url)} must name its {', '.join(missing)}")
        port = str(parts.pop("port", "") or "5432")
        if not port.isdigit():
            raise ValueError(f"database URL {_redacted(url)} has a non-numeric port {port!r}")
        host = str(parts.pop("host"))
        dbname = str(parts.pop("dbname"))
        user = str(parts.pop("user"))
        password = str(parts.pop("password", "") or "")
        return cls(
            host=host,
            dbname=dbname,
            user=user,
            password=password,
            port=int(port),
            params=tuple((str(k), str(v)) for k, v in parts.items()),
        )

    @property
    def is_unix_socket(self) -> bool:
        """True when `host` names the directory holding the server's socket."""
        return self.host.startswith("/")

    def with_dbname(self, dbname: str) -> DatabaseUrl:
        """The same server and credentials, another database."""
        return replace(self, dbname=dbname)

    def with_user(self, user: str, password: str = "") -> DatabaseUrl:
        """The same server and database as another role.

        The password is never carried over: it belongs to the old role.
        """
        if not user:
            raise ValueError("a database role name cannot be empty")
        return replace(self, user=user, password=password)

    def libpq(self) -> str:
        """A `postgresql://` URI that psycopg, psql and libpq accept."""
        credentials = quote(self.user, safe="")
        if self.password:
            credentials += ":" + quote(self.password, safe="")
        query: list[tuple[str, str]] = []
        if self.is_unix_socket:
            # A socket directory cannot sit in the authority part, so libpq takes it as a parameter.
            authority = ""
            query += [("host", self.host), ("port", str(self.port))]
        else:
            host = f"[{self.host}]" if ":" in self.host else self.host
            authority = f"{host}:{self.port}"
        query += list(self.params)
        suffix = "?" + urlencode(query, safe="/", quote_via=quote) if query else ""
        return f"postgresql://{credentials}@{authority}/{quote(self.dbname, safe='')}{suffix}"

    def sqlalchemy(self) -> URL:
        """A SQLAlchemy URL on the psycopg (v3) driver."""
        query: dict[str, str] = dict(self.params)
        if self.is_unix_socket:
            query["host"] = self.host
        return URL.create(
            "postgresql+psycopg",
            username=self.user,
            password=self.password or None,
            host=None if self.is_unix_socket else self.host,
            port=self.port,
            database=self.dbname,
            query=query,
        )

    def redacted(self) -> str:
        """The URI with any password masked, for messages and logs."""
        return _redacted(self.libpq())

    def eventsourcing_env(
        self, *, pool_size: int = 5, max_overflow: int = 10, lock_timeout_seconds: int = 5
    ) -> dict[str, str]:
        """The environment the eventsourcing Application reads to reach this database."""
        if self.params:
            # eventsourcing passes only host/port/dbname/user/password to psycopg, so anything
            # else (sslmode...) would be dropped without a word: refuse instead.
            names = ", ".join(name for name, _ in self.params)
            raise ValueError(
                f"database URL parameters {names} cannot be passed to the event store; "
                "set them as libpq environment variables (PGSSLMODE...) instead"
            )
        return {
            "PERSISTENCE_MODULE": PERSISTENCE_MODULE_TOPIC,
            "POSTGRES_DBNAME": self.dbname,
            "POSTGRES_HOST": self.host,
            "POSTGRES_PORT": str(self.port),
            "POSTGRES_USER": self.user,
            "POSTGRES_PASSWORD": self.password,
            "POSTGRES_POOL_SIZE": str(pool_size),
            "POSTGRES_MAX_OVERFLOW": str(max_overflow),
            "POSTGRES_LOCK_TIMEOUT": str(lock_timeout_seconds),
            # Alembic owns every table; the library must never create or alter one.
            "CREATE_TABLE": "no",
        }


def make_engine(url: DatabaseUrl, **kwargs: Any) -> Engine:
    """A SQLAlchemy engine on the psycopg driver for this database."""
    return create_engine(url.sqlalchemy(), **kwargs)


def _strip_driver(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if sep and scheme.startswith(("postgresql+", "postgres+")):
        return "postgresql://" + rest
    return url


def _redacted(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep:
        # A key=value DSN may hold the password anywhere: show none of it.
        return "<key=value DSN>"
    authority, at, tail = rest.partition("@")
    user, _, password = authority.partition(":")
    if not at or not password:
        return url
    return f"{scheme}://{user}:***@{tail}"
