"""`DigestSource` over `org_comms`, `projects`, `digest_recipients`, `outbox_emails` and
`digest_skips`, read (and the skips written) through the digest's owner pool.

Each method is one statement whatever the number of orgs or projects it is given, and every
statement joins on the (org_id, ...) it was handed, so each row read is bound to its tenant.
"Already queued" is read from the outbox read model by (project, period, recipient); the
read model may lag the store by a moment, which only means a few more drafts reach the
store's version conflict on the deterministic id, where they are counted as already queued.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from adapters.postgres.digest_db import DigestDatabase
from application.digests import (
    MAX_RECIPIENTS,
    DigestTarget,
    OrgDigestSettings,
    PendingProject,
    WhenEmpty,
)
from domain.email import EmailKind
from domain.org import DigestSchedule, Weekday

_DIGEST = EmailKind.DIGEST.value
# Recorded skips older than this are pruned (a period is one week; five keeps a margin).
_SKIP_RETENTION = "35 days"

_SETTINGS_COLUMNS = "org_id, timezone, digest_weekday, digest_at, digest_when_empty"

_DIGEST_ORGS = f"""
SELECT {_SETTINGS_COLUMNS} FROM org_comms
WHERE digest_weekday IS NOT NULL AND digest_at IS NOT NULL
"""  # noqa: S608 - a constant column list

_ORG_SETTINGS = f"SELECT {_SETTINGS_COLUMNS} FROM org_comms WHERE org_id = %s"  # noqa: S608

# A subscriber still owes this period's digest when the outbox holds no digest of the period
# for its address and no skip is recorded for the project.
_PENDING_PROJECTS = f"""
WITH due AS (
    SELECT * FROM unnest(%(orgs)s::uuid[], %(periods)s::text[]) AS d(org_id, period)
),
pending AS (
    SELECT DISTINCT p.org_id, p.id AS project_id, p.code, p.name, d.period
    FROM due AS d
    JOIN projects AS p ON p.org_id = d.org_id AND NOT p.archived
    JOIN digest_recipients AS r ON r.org_id = p.org_id AND r.project_id = p.id
    WHERE NOT EXISTS (
        SELECT 1 FROM outbox_emails AS o
        WHERE o.org_id = r.org_id AND o.project_id = r.project_id AND o.kind = '{_DIGEST}'
          AND o.period = d.period AND o.recipient = r.address
    )
    AND NOT EXISTS (
        SELECT 1 FROM digest_skips AS s
        WHERE s.org_id = p.org_id AND s.project_id = p.id AND s.period = d.period
    )
),
turns AS (
    SELECT *, row_number() OVER (PARTITION BY org_id ORDER BY project_id) AS turn FROM pending
)
SELECT org_id, project_id, code, name, period FROM turns
ORDER BY turn, org_id
LIMIT %(limit)s
"""  # noqa: S608 - a constant

_PENDING_RECIPIENTS = f"""
WITH want AS (
    SELECT * FROM unnest(%(orgs)s::uuid[], %(projects)s::uuid[], %(periods)s::text[])
        AS w(org_id, project_id, period)
)
SELECT r.project_id, r.address FROM want AS w
JOIN digest_recipients AS r ON r.org_id = w.org_id AND r.project_id = w.project_id
WHERE NOT EXISTS (
    SELECT 1 FROM outbox_emails AS o
    WHERE o.org_id = r.org_id AND o.project_id = r.project_id AND o.kind = '{_DIGEST}'
      AND o.period = w.period AND o.recipient = r.address
)
ORDER BY r.project_id, r.address
"""  # noqa: S608 - a constant

_RECORD_SKIPS = f"""
WITH pruned AS (
    DELETE FROM digest_skips WHERE recorded_at < now() - interval '{_SKIP_RETENTION}'
)
INSERT INTO digest_skips (org_id, project_id, period)
SELECT * FROM unnest(%(orgs)s::uuid[], %(projects)s::uuid[], %(periods)s::text[])
ON CONFLICT DO NOTHING
"""  # noqa: S608 - a constant

_RECIPIENTS = """
SELECT address FROM digest_recipients WHERE org_id = %s AND project_id = %s
ORDER BY address LIMIT %s
"""


# Manual sends carry `ref` "project:<id>:manual" and no period (application/digests.py).
_MANUAL_SINCE = f"""
SELECT count(*) AS n FROM outbox_emails
WHERE org_id = %s AND project_id = %s AND kind = '{_DIGEST}' AND period IS NULL
  AND ref = %s AND queued_at >= %s
"""  # noqa: S608 - a constant


def _settings(row: dict[str, Any]) -> OrgDigestSettings:
    weekday, at = row["digest_weekday"], row["digest_at"]
    schedule = None
    if weekday is not None and at is not None and weekday in Weekday.__members__.values():
        schedule = DigestSchedule(weekday=Weekday(weekday), at=at)
    when: WhenEmpty = "skip" if row["digest_when_empty"] == "skip" else "short"
    return OrgDigestSettings(
        org_id=row["org_id"], timezone=row["timezone"], schedule=schedule, when_empty=when
    )


def _targets(targets: Sequence[DigestTarget]) -> dict[str, Any]:
    return {
        "orgs": [t.org_id for t in targets],
        "projects": [t.project_id for t in targets],
        "periods": [t.period for t in targets],
    }


class PostgresDigestSource:
    """The digest's settings, pending projects and recipients, one statement per call."""

    def __init__(self, db: DigestDatabase) -> None:
        self._db = db

    def digest_orgs(self) -> list[OrgDigestSettings]:
        """Every org with digests on."""
        with self._db.transaction() as cur:
            cur.execute(_DIGEST_ORGS)
            return [_settings(row) for row in cur.fetchall()]

    def pending_projects(self, due: Sequence[tuple[UUID, str]], limit: int) -> list[PendingProject]:
        """Up to `limit` projects still owing a digest, round-robin over the orgs."""
        params = {
            "orgs": [org for org, _ in due],
            "periods": [period for _, period in due],
            "limit": limit,
        }
        with self._db.transaction() as cur:
            cur.execute(_PENDING_PROJECTS, params)
            return [PendingProject(**row) for row in cur.fetchall()]

    def pending_recipients(self, targets: Sequence[DigestTarget]) -> dict[UUID, list[str]]:
        """Subscribers of each project still without the period's digest."""
        found: dict[UUID, list[str]] = {}
        if not targets:
            return found
        with self._db.transaction() as cur:
            cur.execute(_PENDING_RECIPIENTS, _targets(targets))
            for row in cur.fetchall():
                found.setdefault(row["project_id"], []).append(row["address"])
        return found

    def record_skips(self, targets: Sequence[DigestTarget]) -> None:
        """Remember skipped (empty) digests; prune old memos in the same statement."""
        with self._db.transaction() as cur:
            cur.execute(_RECORD_SKIPS, _targets(targets))

    def org_settings(self, org_id: UUID) -> OrgDigestSettings | None:
        """One org's settings row."""
        with self._db.transaction() as cur:
            cur.execute(_ORG_SETTINGS, (org_id,))
            row = cur.fetchone()
        return None if row is None else _settings(row)

    def recipients(self, org_id: UUID, project_id: UUID) -> list[str]:
        """A project's live subscribers (at most `MAX_RECIPIENTS`)."""
        with self._db.transaction() as cur:
            cur.execute(_RECIPIENTS, (org_id, project_id, MAX_RECIPIENTS))
            return [row["address"] for row in cur.fetchall()]

    def manual_emails_since(self, org_id: UUID, project_id: UUID, since: datetime) -> int:
        """Manually sent digest emails of one project queued since `since`."""
        with self._db.transaction() as cur:
            cur.execute(_MANUAL_SINCE, (org_id, project_id, f"project:{project_id}:manual", since))
            row = cur.fetchone()
        return 0 if row is None else int(row["n"])
