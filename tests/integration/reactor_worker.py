"""A reactor process for the kill tests: `python -m tests.integration.reactor_worker URL MODE`.

Runs the test mailer over the log once (catch-up) against a relay kept in the database, so
that what the relay saw survives the process. MODE:
- `run`: catch up and exit;
- `hang-before-record`: perform the first effect, print `performed`, then block (to be killed);
- `hang-after-record`: record the first outcome, print `recorded`, then block (to be killed).
"""

from __future__ import annotations

import sys
import threading

import psycopg

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.reactor_runner import ReactorRunner
from application.reactors import Reaction
from tests.support.apps import open_app
from tests.support.catch_up import run_to_head
from tests.support.reactors import MailReactor

RELAY_TABLES = (
    "CREATE TABLE IF NOT EXISTS test_relay_attempts (key text NOT NULL)",
    "CREATE TABLE IF NOT EXISTS test_relay_delivered (key text PRIMARY KEY, receipt text NOT NULL)",
)


class TableRelay:
    """A relay in the database: every attempt logged, one delivery per idempotency key."""

    def __init__(self, url: str) -> None:
        self.url = url

    def send(self, *, key: str, to: str, body: str) -> str:
        with psycopg.connect(self.url) as conn:
            conn.execute("INSERT INTO test_relay_attempts (key) VALUES (%s)", (key,))
            conn.execute(
                "INSERT INTO test_relay_delivered (key, receipt) VALUES (%s, %s)"
                " ON CONFLICT (key) DO NOTHING",
                (key, f"receipt:{to}:{len(body)}"),
            )
            row = conn.execute(
                "SELECT receipt FROM test_relay_delivered WHERE key = %s", (key,)
            ).fetchone()
        assert row is not None
        return str(row[0])


class HangingMailer(MailReactor):
    """The test mailer, blocking forever at the point the test kills it."""

    mode = "run"

    def record(self, reaction: Reaction, outcome: str) -> None:
        if self.mode == "hang-before-record":
            hang("performed")
        super().record(reaction, outcome)
        if self.mode == "hang-after-record":
            hang("recorded")


def hang(word: str) -> None:
    print(word, flush=True)
    threading.Event().wait()


def main() -> None:
    """Catch the mailer up once (or hang where told)."""
    url, mode = sys.argv[1], sys.argv[2]
    app = open_app(url)
    try:
        reactor = HangingMailer(app, TableRelay(url))
        reactor.mode = mode
        runner = ReactorRunner(reactor, DatabaseUrl.parse(url), app.mapper.to_domain_event)
        run_to_head(url, runner)
    finally:
        app.close()
    print("done", flush=True)


if __name__ == "__main__":
    main()
