"""Review-queue writes and reingest start OCR work: they draw on the org's OCR bucket."""

from __future__ import annotations

from interfaces.http.rate_limits.classes import OCR_WRITES, ORG_COMMANDS, ORG_OCR, org_class
from tests.api.routes import ROUTES


def test_resolve_and_reingest_draw_on_the_org_ocr_bucket_and_reading_does_not() -> None:
    assert len(OCR_WRITES) == 2
    for method, path in OCR_WRITES:
        assert org_class(method, path) == ORG_OCR
    assert org_class("GET", "/api/projects/{project_id}/review-queue") is None
    assert org_class("POST", "/api/projects/{project_id}/artifacts") != ORG_OCR
    assert org_class("PATCH", "/api/projects/{project_id}/artifacts/{artifact_id}") == ORG_COMMANDS


def test_the_ocr_bucket_names_routes_the_app_serves() -> None:
    # The catalogue is read from the real app factory: a renamed route fails here.
    assert {route.key for route in ROUTES} >= OCR_WRITES
