"""An outbox process for the kill tests:
`python -m tests.integration.outbox_worker URL SMTP_URL CA_FILE MODE`.

Runs the production outbox reactor once over the log (catch-up), sending through the real
SMTP mailer to the test's loopback relay (which lives in the test process, so what it saw
survives this one). MODE:
- `run`: catch up and exit (prints `done`);
- `hang-before-record`: send the first email, print `performed`, then block (to be killed);
- `hang-after-record`: record the first outcome, print `recorded`, then block (to be killed).
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from adapters.mail.smtp import SmtpMailer, parse_smtp_url, verifying_context
from adapters.postgres.database import DatabaseUrl
from adapters.postgres.reactor_runner import ReactorRunner
from application.outbox_reactor import OutboxReactor, Outcome
from application.reactors import Reaction
from tests.support.apps import open_app
from tests.support.catch_up import run_to_head
from tests.support.outbox import SENDER


class HangingOutbox(OutboxReactor):
    """The outbox, blocking forever at the point the test kills it."""

    mode = "run"

    def record(self, reaction: Reaction, outcome: Outcome) -> None:
        if self.mode == "hang-before-record":
            hang("performed")
        super().record(reaction, outcome)
        if self.mode == "hang-after-record":
            hang("recorded")


def hang(word: str) -> None:
    print(word, flush=True)
    threading.Event().wait()


def main() -> None:
    url, smtp_url, ca_file, mode = sys.argv[1:5]
    app = open_app(url)
    mailer = SmtpMailer(parse_smtp_url(smtp_url, timeout=10), verifying_context(Path(ca_file)))
    try:
        reactor = HangingOutbox(app, mailer, SENDER)
        reactor.mode = mode
        runner = ReactorRunner(reactor, DatabaseUrl.parse(url), app.mapper.to_domain_event)
        run_to_head(url, runner)
    finally:
        mailer.close()
        app.close()
    print("done", flush=True)


if __name__ == "__main__":
    main()
