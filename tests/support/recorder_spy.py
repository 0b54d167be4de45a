"""A group-commit recorder that lets a test cut its connection in the middle of an append."""

from __future__ import annotations

import os
import socket
import threading
from typing import Any

from psycopg import Connection, Cursor
from psycopg.rows import DictRow

from adapters.postgres.recorder import GroupCommitRecorder, _Request, _Result


class CuttableRecorder(GroupCommitRecorder):
    """Remembers the connection of its first append, so a test can cut it while it waits."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.appending: Connection[DictRow] | None = None
        self.first_append = threading.Event()
        self.settling = threading.Event()

    def _append(self, curs: Cursor[DictRow], batch: list[_Request]) -> list[_Result]:
        if self.appending is None:
            self.appending = curs.connection
            self.first_append.set()
        return super()._append(curs, batch)

    def _await_ended(self, curs: Cursor[DictRow], pid: int) -> None:
        self.settling.set()
        super()._await_ended(curs, pid)

    def cut(self) -> int:
        """Shut the first append's socket on this side only; its server process carries on
        with the statement it received. Returns that server process's pid."""
        conn = self.appending
        assert conn is not None
        pid = conn.info.backend_pid
        with socket.socket(fileno=os.dup(conn.pgconn.socket)) as sock:
            sock.shutdown(socket.SHUT_RDWR)
        return pid
