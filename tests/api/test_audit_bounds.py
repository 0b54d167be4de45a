"""Nothing a project grows to can make an audit row unprojectable (the 1 MB tsvector limit)."""

from __future__ import annotations

from uuid import uuid4

import psycopg

from domain.seal import ProjectSeal
from domain.stamps import Stamp
from projections.audit import AuditProjection
from tests.api.conftest import Api, dev

HEADS = 20_000


def test_a_seal_of_20000_aggregates_is_projected_as_its_summary(api: Api) -> None:
    org, other = api.new_org("Acme"), api.new_org("Globex")
    project = api.create_project("olga", org)
    # The seal event as the sealer would write it, built directly: 20,000 chain heads.
    heads = {
        str(uuid4()): {"version": 1, "position": i + 1, "chain_hash": f"{i:064x}"}
        for i in range(HEADS)
    }
    stamp = Stamp(
        org_id=org, actor="service:sealer", correlation_id="cid-seal", at=api.clock.now()
    ).for_project(project)
    seal = ProjectSeal.start(project_id=project, stamp=stamp)
    seal.seal(heads=heads, through_position=HEADS, seal_hash="ab" * 32, stamp=stamp)
    api.runtime.app.save(seal)
    # Another org writes after it: its feed must keep flowing past the seal.
    later = api.create_project("gus", other)
    api.catch_up(AuditProjection())

    sealed = api.client.get(
        "/api/audit/list", params={"action": "audit.sealed"}, headers=dev("olga", org)
    )
    assert sealed.status_code == 200, sealed.text
    (item,) = sealed.json()["items"]
    assert item["details"] == {
        "aggregates": HEADS,
        "through_position": HEADS,
        "seal_hash": "ab" * 32,
        "previous_seal_hash": None,
    }
    others = api.client.get(
        "/api/audit/list", params={"project_id": str(later)}, headers=dev("gus", other)
    )
    assert others.status_code == 200, others.text
    assert [i["action"] for i in others.json()["items"]][-1] == "project.created"


def test_no_details_overflow_the_search_vector(api: Api) -> None:
    # A row written straight to the table (the SQL-side bound, not the projection's): 2 MB of
    # distinct words, far over what one tsvector may hold.
    org = api.new_org("Acme")
    words = " ".join(f"w{i:x}" for i in range(300_000))
    with psycopg.connect(api.database_url) as conn:
        conn.execute(
            "INSERT INTO audit_events (position, org_id, project_id, action, actor, target_kind,"
            " target_id, aggregate_id, aggregate_version, outcome, correlation_id, occurred_at,"
            " details) VALUES (%s, %s, NULL, 'x.y', 'olga', 'x', 'x', %s, 1, 'ok', 'c', now(),"
            " jsonb_build_object('text', %s::text))",
            (10**12, org, uuid4(), words),
        )
        (found,) = conn.execute(
            "SELECT count(*) FROM audit_events"
            " WHERE org_id = %s AND search @@ websearch_to_tsquery('simple', 'w1')",
            (org,),
        ).fetchone() or (0,)
    # The first words stay searchable.
    assert found == 1
