"""Every reactor of the service, and starting them in a process (serve, or the worker).

The reactors' targets are built by the composition root that owns them (the ingestion queue
belongs to the queue host), so they are handed in here rather than built; the outbox's mailer
is built here from the settings and closed after the reactors stop.
"""

from __future__ import annotations

from typing import Any

from adapters.postgres.reactor_host import ReactorHost
from application.app import Teaim
from application.ingestion_ports import IngestQueue
from application.ingestion_reactor import IngestionReactor
from application.mail_ports import Mailer
from application.reactors import Reactor
from interfaces.mailer import build_mailer, outbox_reactor
from interfaces.runtime import Runtime
from interfaces.settings import Settings


def all_reactors(
    app: Teaim, ingest_queue: IngestQueue, settings: Settings, mailer: Mailer
) -> list[Reactor[Any]]:
    """One instance of each reactor, in the order they are started."""
    return [IngestionReactor(app, ingest_queue), outbox_reactor(app, settings, mailer)]


def start_reactors(runtime: Runtime, ingest_queue: IngestQueue) -> ReactorHost:
    """Run every reactor inside this process (stopped with the runtime, before its pools)."""
    mailer = build_mailer(runtime.settings)
    # Registered before the host's stop: the mailer closes once no reactor sends any more.
    runtime.lifecycle.callback(mailer.close)
    host = ReactorHost(
        all_reactors(runtime.app, ingest_queue, runtime.settings, mailer),
        runtime.database.url,
        runtime.app.mapper.to_domain_event,
    )
    runtime.lifecycle.callback(host.stop)
    host.start()
    return host
