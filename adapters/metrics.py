"""Prometheus metrics: requests, projection lag, scheduler job runs and database pools.

No metric carries an org id: a label per tenant would grow the series without bound (per-org
figures live in the request_usage table instead). Projection lag and pool use are read when
Prometheus scrapes, by collectors, rather than sampled by a thread of their own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from psycopg_pool import ConnectionPool
from sqlalchemy import Engine
from sqlalchemy.pool import QueuePool

from adapters.postgres.database import DatabaseUrl
from adapters.postgres.projection_runner import statuses

log = logging.getLogger("teaim.metrics")

# Seconds; the bell answers in milliseconds, exports and streams take far longer.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
JOB_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
# The outcomes a scheduler reports; anything else is counted as "other" (bounded labels).
JOB_OUTCOMES = frozenset({"ok", "failed", "timed_out", "skipped", "missed"})

# Job runs are process-wide, like the scheduler that records them: whichever process runs a
# job counts it, and /metrics of that process shows it with the process's own figures.
_JOB_RUNS = Counter(
    "teaim_scheduler_job_runs",
    "Scheduled job runs by job and outcome (ok, failed, timed_out, skipped, missed).",
    ["job", "outcome"],
)
_JOB_DURATION = Histogram(
    "teaim_scheduler_job_duration_seconds",
    "How long scheduled job runs took, by job.",
    ["job"],
    buckets=JOB_BUCKETS,
)


def record_job_run(job_id: str, outcome: str, duration: float) -> None:
    """Count one run of a scheduled job and how long it took (seconds)."""
    _JOB_RUNS.labels(job_id, outcome if outcome in JOB_OUTCOMES else "other").inc()
    _JOB_DURATION.labels(job_id).observe(duration)


class HttpMetrics:
    """Request counts and latency by method, route template and status."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["method", "route", "status"]
        self._requests = Counter(
            "teaim_http_requests",
            "HTTP requests answered, by method, route template and status.",
            labels,
            registry=registry,
        )
        self._latency = Histogram(
            "teaim_http_request_duration_seconds",
            "Time from request to the end of the response, by method, route template, status.",
            labels,
            registry=registry,
            buckets=LATENCY_BUCKETS,
        )
        # Resolving labels takes a lock and builds tuples; the set of routes is small and
        # fixed, so each combination is looked up once and its children kept.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            values = (method, route, str(status))
            children = (self._requests.labels(*values), self._latency.labels(*values))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)


@dataclass(frozen=True)
class PoolUse:
    """How a connection pool is used right now."""

    connections: int
    in_use: int
    waiting: int
    max_size: int | None


def psycopg_pool_use(stats: Mapping[str, int]) -> PoolUse:
    """Use of a psycopg_pool pool, from its get_stats() (the read models' and event store's)."""
    size = int(stats.get("pool_size", 0))
    return PoolUse(
        connections=size,
        in_use=size - int(stats.get("pool_available", 0)),
        waiting=int(stats.get("requests_waiting", 0)),
        max_size=int(stats["pool_max"]) if "pool_max" in stats else None,
    )


def event_store_pool_use(recorder: object) -> PoolUse:
    """Use of the eventsourcing PostgreSQL recorder's psycopg pool (the command side's)."""
    pool: ConnectionPool[Any] = recorder.datastore.pool  # type: ignore[attr-defined]
    return psycopg_pool_use(pool.get_stats())


def sqlalchemy_pool_use(engine: Engine) -> PoolUse:
    """Use of a SQLAlchemy engine's pool (the write engine's)."""
    pool = engine.pool
    if not isinstance(pool, QueuePool):
        return PoolUse(connections=0, in_use=0, waiting=0, max_size=None)
    idle, busy = pool.checkedin(), pool.checkedout()
    # SQLAlchemy does not say how many callers wait for a connection.
    return PoolUse(connections=idle + busy, in_use=busy, waiting=0, max_size=None)


class PoolCollector(Collector):
    """Connections, connections in use, waiting callers and maximum size, per named pool."""

    def __init__(self, pools: Mapping[str, Callable[[], PoolUse]]) -> None:
        self._pools = pools

    def collect(self) -> Iterator[Metric]:
        """Read every pool's figures now."""
        families = {
            "connections": GaugeMetricFamily(
                "teaim_db_pool_connections", "Open connections in the pool.", labels=["pool"]
            ),
            "in_use": GaugeMetricFamily(
                "teaim_db_pool_in_use", "Connections lent out right now.", labels=["pool"]
            ),
            "waiting": GaugeMetricFamily(
                "teaim_db_pool_waiting", "Callers waiting for a connection.", labels=["pool"]
            ),
            "max_size": GaugeMetricFamily(
                "teaim_db_pool_max", "Most connections the pool may open.", labels=["pool"]
            ),
        }
        for name, read in self._pools.items():
            try:
                use = read()
            except Exception:  # a closed pool must not break the scrape of everything else
                log.warning("cannot read the %s pool's figures", name, exc_info=True)
                continue
            families["connections"].add_metric([name], use.connections)
            families["in_use"].add_metric([name], use.in_use)
            families["waiting"].add_metric([name], use.waiting)
            if use.max_size is not None:
                families["max_size"].add_metric([name], use.max_size)
        yield from families.values()


class ProjectionLagCollector(Collector):
    """Each read model's position, lag in events and seconds, and whether it stopped."""

    def __init__(self, url: Callable[[], DatabaseUrl], names: Sequence[str]) -> None:
        self._url = url
        self._names = list(names)

    def collect(self) -> Iterator[Metric]:
        """Ask the database where every projection stands (one short connection per scrape)."""
        up = GaugeMetricFamily(
            "teaim_projection_status_up", "1 when the projections' status could be read."
        )
        try:
            with psycopg.connect(self._url().libpq(), connect_timeout=5) as conn:
                rows = statuses(conn, self._names)
        except psycopg.Error:
            log.warning("cannot read the projections' status", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        families = [
            GaugeMetricFamily(
                "teaim_projection_lag_events",
                "Events recorded but not yet applied, per read model.",
                labels=["projection"],
            ),
            GaugeMetricFamily(
                "teaim_projection_lag_seconds",
                "Age of the oldest event not yet applied, per read model.",
                labels=["projection"],
            ),
            GaugeMetricFamily(
                "teaim_projection_position",
                "The last event applied, per read model.",
                labels=["projection"],
            ),
            GaugeMetricFamily(
                "teaim_projection_stopped",
                "1 when a poison event stopped the read model (teaim projections resume).",
                labels=["projection"],
            ),
            GaugeMetricFamily(
                "teaim_projection_halted_orgs",
                "Orgs a poison event halted, per read model (teaim projections resume --org).",
                labels=["projection"],
            ),
        ]
        for row in rows:
            values = (
                row.lag_events,
                row.lag_seconds,
                row.position,
                row.status == "stopped",
                len(row.halts),
            )
            for family, value in zip(families, values, strict=True):
                family.add_metric([row.name], float(value))
        yield up
        yield from families


def exposition(registries: Iterable[CollectorRegistry]) -> bytes:
    """The Prometheus text format of the process-wide registry and the given ones."""
    return b"".join(generate_latest(r) for r in (REGISTRY, *registries))
