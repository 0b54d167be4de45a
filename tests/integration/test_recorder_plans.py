"""The event store's reads are index-backed, as the planner itself decides on realistic data."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

import psycopg
import pytest

from tests.conftest import ScratchDatabases

BIG_ORG = UUID("00000000-0000-4000-8000-0000000000a1")
SMALL_ORG = UUID("00000000-0000-4000-8000-0000000000a2")
BIG_PROJECT = UUID("00000000-0000-4000-8000-0000000000b1")
SMALL_PROJECT = UUID("00000000-0000-4000-8000-0000000000b2")


@pytest.fixture(scope="module")
def populated_url(databases: ScratchDatabases) -> Iterator[str]:
    # Module-scoped: the rows and statistics take a moment to build and every test only reads.
    url = databases.create()
    with psycopg.connect(url) as conn:
        # A busy org and project next to small ones, as in production: a query for the small
        # ones only pays off through the (org_id|project_id, notification_id) indexes.
        conn.execute(
            "INSERT INTO teaim_events"
            " (notification_id, originator_id, originator_version, topic, state, org_id,"
            "  project_id, content_hash, chain_hash)"
            " SELECT n, gen_random_uuid(), 1, 'tests:Happened', '\\x00'::bytea,"
            "  CASE WHEN n %% 250 = 0 THEN %(small_org)s ELSE %(big_org)s END::uuid,"
            "  CASE WHEN n %% 250 = 0 THEN %(small_project)s"
            "       WHEN n %% 7 = 0 THEN NULL ELSE %(big_project)s END::uuid,"
            "  sha256(n::text::bytea), sha256(n::text::bytea)"
            " FROM generate_series(1, 20000) AS n",
            {
                "small_org": SMALL_ORG,
                "big_org": BIG_ORG,
                "small_project": SMALL_PROJECT,
                "big_project": BIG_PROJECT,
            },
        )
        conn.commit()
        conn.execute("ANALYZE teaim_events")
        conn.commit()
    try:
        yield url
    finally:
        databases.drop(url)


def plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from plan_nodes(child)


def explain(url: str, query: str, params: tuple[object, ...]) -> list[dict[str, Any]]:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"EXPLAIN (FORMAT JSON) {query}", params).fetchone()
    assert row is not None
    return list(plan_nodes(row[0][0]["Plan"]))


def assert_index_ordered_scan(nodes: list[dict[str, Any]], index: str) -> None:
    types = [node["Node Type"] for node in nodes]
    assert any(node.get("Index Name") == index for node in nodes), (index, types)
    # Reading the index in order is the point: no table scan, and no sort of what was read.
    assert "Seq Scan" not in types, types
    assert "Sort" not in types, types


def test_a_project_history_reads_the_project_index_in_log_order(populated_url: str) -> None:
    nodes = explain(
        populated_url,
        "SELECT * FROM teaim_events WHERE project_id = %s ORDER BY notification_id",
        (SMALL_PROJECT,),
    )
    assert_index_ordered_scan(nodes, "teaim_events_project_id_notification_id_idx")


def test_an_org_history_reads_the_org_index_in_log_order(populated_url: str) -> None:
    nodes = explain(
        populated_url,
        "SELECT * FROM teaim_events WHERE org_id = %s ORDER BY notification_id",
        (SMALL_ORG,),
    )
    assert_index_ordered_scan(nodes, "teaim_events_org_id_notification_id_idx")


def test_select_events_reads_the_originator_key(populated_url: str) -> None:
    # The library's select_events statement.
    with psycopg.connect(populated_url) as conn:
        row = conn.execute("SELECT originator_id FROM teaim_events LIMIT 1").fetchone()
    assert row is not None
    nodes = explain(
        populated_url,
        "SELECT * FROM teaim_events WHERE originator_id = %s ORDER BY originator_version ASC",
        (row[0],),
    )
    assert_index_ordered_scan(nodes, "teaim_events_originator_key")


def test_select_notifications_reads_the_primary_key(populated_url: str) -> None:
    # The library's select_notifications statement, as a subscriber tailing the log issues it.
    nodes = explain(
        populated_url,
        "SELECT * FROM teaim_events WHERE notification_id>=%s ORDER BY notification_id LIMIT %s",
        (15000, 100),
    )
    assert_index_ordered_scan(nodes, "teaim_events_pkey")
