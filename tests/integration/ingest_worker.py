"""An ingestion worker process to kill: `python -m tests.integration.ingest_worker URL MODE`.

Runs one worker thread whose handler, on its first job, prints `running <job id> <attempt>`
and then, by MODE:
- `hang`: blocks forever, renewing its 1 s lease, until the test kills the process;
- `die`: kills its own process with SIGKILL (a job that takes its worker down every time).
"""

from __future__ import annotations

import os
import signal
import sys
import threading

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.ingest_host import IngestHost, IngestHostConfig
from application.ingestion_ports import IngestJob

LEASE_SECONDS = 1.0


class KillableHandler:
    """Announces the job, then hangs or dies."""

    def __init__(self, mode: str) -> None:
        self.mode = mode

    def run(self, job: IngestJob) -> None:
        print(f"running {job.job_id} {job.attempts}", flush=True)
        if self.mode == "die":
            os.kill(os.getpid(), signal.SIGKILL)
        threading.Event().wait()

    def on_dead(self, job: IngestJob, reason: str, detail: str, attempts: int) -> None:
        print(f"dead {job.job_id} {reason} {attempts}: {detail}", flush=True)


def main() -> None:
    """Work until killed."""
    url, mode = sys.argv[1], sys.argv[2]
    config = IngestHostConfig(
        workers=1, per_org_cap=1, lease_seconds=LEASE_SECONDS, poll_seconds=0.1
    )
    host = IngestHost(KillableHandler(mode), DatabaseUrl.parse(url), config)
    host.start()
    threading.Event().wait()


if __name__ == "__main__":
    main()
