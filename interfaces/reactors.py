"""Every reactor of the service, and starting them in a process (serve, or the worker).

The reactors' targets are built by the composition root that owns them (the ingestion queue
belongs to the queue host), so they are handed in here rather than built.
"""

from __future__ import annotations

from typing import Any

from adapters.postgres.reactor_host import ReactorHost
from application.app import Teaim
from application.ingestion_ports import IngestQueue
from application.ingestion_reactor import IngestionReactor
from application.reactors import Reactor
from interfaces.runtime import Runtime


def all_reactors(app: Teaim, ingest_queue: IngestQueue) -> list[Reactor[Any]]:
    """One instance of each reactor, in the order they are started."""
    return [IngestionReactor(app, ingest_queue)]


def start_reactors(runtime: Runtime, ingest_queue: IngestQueue) -> ReactorHost:
    """Run every reactor inside this process (stopped with the runtime, before its pools)."""
    host = ReactorHost(
        all_reactors(runtime.app, ingest_queue),
        runtime.database.url,
        runtime.app.mapper.to_domain_event,
    )
    runtime.lifecycle.callback(host.stop)
    host.start()
    return host
