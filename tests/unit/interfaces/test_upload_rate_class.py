"""Uploads and URL fetches draw on their own org bucket (`org_uploads`)."""

from __future__ import annotations

import pytest

from interfaces.http.rate_limits.classes import ORG_UPLOADS, org_class


@pytest.mark.parametrize(
    "path",
    ["/api/projects/{project_id}/artifacts", "/api/projects/{project_id}/artifacts/from-url"],
)
def test_uploads_draw_on_the_org_uploads_bucket(path: str) -> None:
    assert org_class("POST", path) == ORG_UPLOADS
