"""Outbox processes killed (SIGKILL) around the record, against a real loopback relay.

The in-process crash tests (test_outbox_reactor.py) raise at the same points; here the
process is really gone (no `finally`, no socket closed politely) and a new one takes over.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from domain.email import Email
from tests.support.apps import open_app, seed_org
from tests.support.clocks import SettableClock
from tests.support.contexts import service
from tests.support.mail_doubles import MemoryMailer
from tests.support.outbox import Outbox
from tests.support.smtp_server import SmtpRelay, smtp_relay

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Scene:
    url: str
    relay: SmtpRelay
    ca_file: Path
    outbox: Outbox
    email: Email

    def worker(self, mode: str, *, until: str) -> subprocess.Popen[str]:
        """Start an outbox process and wait until it prints `until`."""
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.integration.outbox_worker",
                self.url,
                self.relay.url(),
                str(self.ca_file),
                mode,
            ],
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            stdout=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if line != until:
            process.kill()
            process.wait(timeout=30)
            pytest.fail(f"outbox process printed {line!r}, expected {until!r}")
        return process

    def kill(self, process: subprocess.Popen[str]) -> None:
        process.kill()  # SIGKILL: nothing runs after this
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()

    def finish(self) -> None:
        process = self.worker("run", until="done")
        assert process.wait(timeout=60) == 0
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture
def scene(database_url: str, tmp_path: Path) -> Iterator[Scene]:
    with smtp_relay() as relay:
        ca_file = tmp_path / "ca.pem"
        ca_file.write_text(
            "".join(
                ssl.DER_cert_to_PEM_cert(der)
                for der in relay.client_context.get_ca_certs(binary_form=True)
            )
        )
        clock = SettableClock()
        app = open_app(database_url, clock=clock)
        try:
            org, project, _owner = seed_org(app)
            app.update_org_settings(ctx=service(org), daily_email_cap=0)
            # This process only queues and reads: the workers send (on real time; the org
            # has no quiet hours and no cap).
            outbox = Outbox.build(app, clock, database_url, org, project, MemoryMailer())
            yield Scene(database_url, relay, ca_file, outbox, outbox.queue())
        finally:
            app.close()


@pytest.mark.slow
def test_killed_after_the_relay_accepted_the_restart_resends_the_same_message(
    scene: Scene,
) -> None:
    scene.kill(scene.worker("hang-before-record", until="performed"))
    assert scene.relay.sink.message_ids() == [scene.email.message_id]
    assert scene.outbox.events(scene.email.id) == ["Queued"]

    scene.finish()

    # At least once with a stable identity: the same Message-ID, the same bytes.
    assert scene.relay.sink.message_ids() == [scene.email.message_id] * 2
    assert scene.relay.sink.accepted[0] == scene.relay.sink.accepted[1]
    assert scene.outbox.events(scene.email.id) == ["Queued", "Delivered"]
    scene.finish()  # a third process finds nothing to send
    assert len(scene.relay.sink.accepted) == 2


@pytest.mark.slow
def test_killed_after_the_record_the_restart_sends_nothing(scene: Scene) -> None:
    scene.kill(scene.worker("hang-after-record", until="recorded"))
    assert scene.outbox.events(scene.email.id) == ["Queued", "Delivered"]

    scene.finish()

    assert scene.relay.sink.message_ids() == [scene.email.message_id]
