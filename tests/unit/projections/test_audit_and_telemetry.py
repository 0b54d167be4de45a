"""The audit feed and telemetry projections: records in, row operations out."""

from __future__ import annotations

from uuid import uuid4

from domain.denial import SecurityDenial
from domain.raid import Memory
from domain.signoff import SignOff
from projections.audit import TABLE, AuditProjection
from projections.ops import Insert, Upsert
from projections.records import EventRecord
from projections.telemetry import COUNTS, SAMPLE_SIZE, SAMPLES, TOTALS, TelemetryProjection
from tests.unit.projections.support import Log, project


def _denial(log: Log, reason: str = "not a member") -> EventRecord:
    return log.record(
        SecurityDenial.Recorded,
        uuid4(),
        actor="mallory",
        project_id=None,
        action="stage.read",
        target_kind="Project",
        target_id="p-1",
        reason=reason,
    )


def test_every_event_is_one_audit_row_with_its_stamps_and_payload() -> None:
    log, memory = Log(), uuid4()
    record = log.record(Memory.Created, memory, title="Kick-off", body="b", tags=["x"])
    [insert] = project(AuditProjection(), [record]).ops
    assert isinstance(insert, Insert)
    assert insert.table == TABLE
    assert insert.row == {
        "position": 1,
        "org_id": log.org_id,
        "project_id": log.project_id,
        "action": "memory.created",
        "actor": "alice",
        "target_kind": "memory",
        "target_id": str(memory),
        "aggregate_id": memory,
        "aggregate_version": 1,
        "outcome": "ok",
        "correlation_id": "cid",
        "occurred_at": log.at,
        "details": {"title": "Kick-off", "body": "b", "tags": ["x"]},
    }


def test_a_denial_is_filed_against_its_target_as_denied() -> None:
    log = Log()
    [insert] = project(AuditProjection(), [_denial(log)]).ops
    assert isinstance(insert, Insert)
    assert (insert.row["action"], insert.row["outcome"]) == ("security.denied", "denied")
    assert (insert.row["target_kind"], insert.row["target_id"]) == ("project", "p-1")
    assert insert.row["project_id"] is None


def test_token_hashes_never_reach_the_feed() -> None:
    log, signoff = Log(), uuid4()
    record = log.record(
        SignOff.ExternalSignerRequested,
        signoff,
        request_id=uuid4(),
        email="c@client.com",
        token_hash="f" * 64,
        expires_at=log.at,
    )
    [insert] = project(AuditProjection(), [record]).ops
    assert isinstance(insert, Insert)
    assert "token_hash" in record.payload
    assert "token_hash" not in insert.row["details"]
    assert insert.row["details"]["email"] == "c@client.com"


def test_telemetry_counts_denials_by_day_and_reason_and_ignores_the_rest() -> None:
    log = Log()
    records = [
        _denial(log, "not a member"),
        log.record(Memory.Created, uuid4(), title="m", body="", tags=[]),
        _denial(log, "not a member"),
        _denial(log, ""),
    ]
    applied = project(TelemetryProjection(), records)
    assert applied.tables.all(TOTALS) == [{"org_id": log.org_id, "kind": "denial", "total": 3}]
    counts = {row["reason"]: row["count"] for row in applied.tables.all(COUNTS)}
    assert counts == {"not a member": 2, "unspecified": 1}
    assert {row["day"] for row in applied.tables.all(COUNTS)} == {log.at.date()}
    assert sorted(row["position"] for row in applied.tables.all(SAMPLES)) == [1, 3, 4]
    assert all(isinstance(op, Upsert) for op in applied.ops)


def test_telemetry_samples_are_a_ring_of_the_latest() -> None:
    log = Log()
    applied = project(TelemetryProjection(), [_denial(log) for _ in range(SAMPLE_SIZE + 3)])
    samples = applied.tables.all(SAMPLES)
    assert len(samples) == SAMPLE_SIZE
    assert sorted(row["position"] for row in samples) == list(range(4, SAMPLE_SIZE + 4))
