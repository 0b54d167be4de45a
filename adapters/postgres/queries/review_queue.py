"""The review queue of a project: items by lane, oldest first, and the lanes' sizes."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from adapters.postgres.queries.lists import Key, ListQuery, Order, fetch_page
from adapters.postgres.read_db import ReadDatabase
from projections.paging import Page, PageRequest
from projections.review_queue_view import LANES, ReviewItem, ReviewLane

# The position of the event that put the item in its lane: unique, and the queue's order.
QUEUE_ORDER = Order("queue", (Key("q.position", "int"), Key("q.artifact_id", "uuid")))
DOCUMENT_ORDER = Order("id", (Key("d.artifact_id", "uuid"),))


def _item(row: dict[str, Any]) -> ReviewItem:
    return ReviewItem(**row)


class PostgresReviewQueue:
    """`ReviewQueueView` over the `review_queue` table, read as the RLS-bound role."""

    def __init__(self, read_db: ReadDatabase) -> None:
        self._db = read_db

    def items(
        self, org_id: UUID, project_id: UUID, *, lane: ReviewLane | None, page: PageRequest
    ) -> Page[ReviewItem]:
        """The project's items (of one lane, or all), in the order they entered the queue."""
        conditions = ["q.org_id = %s", "q.project_id = %s"]
        params: list[Any] = [org_id, project_id]
        if lane is not None:
            conditions.append("q.lane = %s")
            params.append(lane)
        query = ListQuery(
            "q.artifact_id, q.project_id, q.name, q.lane, q.status, q.reason, q.detail,"
            " q.attempts, q.page_count, q.job_id, q.content_version, q.since, q.updated_at",
            "review_queue AS q",
            tuple(conditions),
            tuple(params),
        )
        return fetch_page(self._db, org_id, query, QUEUE_ORDER, page, _item)

    def counts(self, org_id: UUID, project_id: UUID) -> dict[str, int]:
        """How many items each lane holds (every lane named, zero included)."""
        with self._db.tenant(org_id) as cur:
            cur.execute(
                "SELECT lane, count(*) AS n FROM review_queue"
                " WHERE org_id = %s AND project_id = %s GROUP BY lane",
                (org_id, project_id),
            )
            found = {row["lane"]: int(row["n"]) for row in cur.fetchall()}
        return {lane: found.get(lane, 0) for lane in LANES}

    def documents(self, org_id: UUID, project_id: UUID, *, page: PageRequest) -> Page[UUID]:
        """Every live document of the project, in any state, by id."""
        query = ListQuery(
            "d.artifact_id",
            "review_queue_documents AS d",
            ("d.org_id = %s", "d.project_id = %s"),
            (org_id, project_id),
        )
        return fetch_page(
            self._db, org_id, query, DOCUMENT_ORDER, page, lambda row: row["artifact_id"]
        )
