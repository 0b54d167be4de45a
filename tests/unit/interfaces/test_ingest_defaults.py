"""Out of the box, one org can never hold every ingestion worker (issue 8 review)."""

from __future__ import annotations

from interfaces.settings import Settings


def test_the_default_per_org_cap_leaves_a_worker_for_other_orgs() -> None:
    settings = Settings(_env_file=None)
    assert settings.ingest_per_org_concurrency < settings.ingest_workers
