"""Audit CSV exports: no cell a spreadsheet would run as a formula (OWASP CSV injection)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from uuid import uuid4

from hypothesis import given
from hypothesis import strategies as st

from interfaces.http.routes.audit import FORMULA_STARTS, csv_body
from projections.audit_view import COLUMNS, AuditEvent

TEXT = st.text(
    alphabet=st.sampled_from([*FORMULA_STARTS, "a", "1", " ", "'", '"', ",", "\n", "é"]),
    max_size=12,
)


def _event(actor: str, target: str, correlation: str, title: str) -> AuditEvent:
    return AuditEvent(
        position=7,
        occurred_at=datetime(2030, 1, 7, tzinfo=UTC),
        action="stage.created",
        outcome="ok",
        actor=actor,
        org_id=uuid4(),
        project_id=None,
        target_kind="stage",
        target_id=target,
        aggregate_id=uuid4(),
        aggregate_version=1,
        correlation_id=correlation,
        details={"title": title},
    )


@given(TEXT, TEXT, TEXT, TEXT)
def test_no_cell_starts_like_a_formula_and_each_reads_back_as_written(
    actor: str, target: str, correlation: str, title: str
) -> None:
    text = "".join(csv_body([_event(actor, target, correlation, title)]))
    header, row = list(csv.reader(io.StringIO(text, newline="")))
    assert tuple(header) == COLUMNS
    for cell in row:
        assert not cell.startswith(FORMULA_STARTS), cell
    cells = dict(zip(header, row, strict=True))
    for column, written in (
        ("actor", actor),
        ("target_id", target),
        ("correlation_id", correlation),
    ):
        # Only a formula-like start gains the quote a spreadsheet hides; nothing else changes.
        expected = "'" + written if written.startswith(FORMULA_STARTS) else written
        assert cells[column] == expected


def test_the_owasp_examples_are_neutralised() -> None:
    for dangerous in ("=1+2", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1", '=HYPERLINK("x")'):
        text = "".join(csv_body([_event(dangerous, "t", "c", "x")]))
        _, row = list(csv.reader(io.StringIO(text, newline="")))
        assert row[COLUMNS.index("actor")] == "'" + dangerous
