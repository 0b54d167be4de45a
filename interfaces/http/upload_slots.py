"""How many uploads (and URL fetches) one API process runs at once, in all and per org.

Each upload in flight holds a blob-writer thread and a request body for as long as the client
takes, so they are counted: beyond `UPLOADS_MAX_PER_ORG` a tenant's next upload is refused
with 429, beyond `UPLOADS_MAX_CONCURRENT` anyone's with 503, both with Retry-After, at once
and before a byte of the body is read (decision 0023). A queue would only turn a noisy
tenant's burst into everyone's wait. Counted in this process, on its event loop: the bound
is on this process's threads and memory, not a cluster-wide quota (that is the rate limit).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID

from starlette.requests import Request

from interfaces.http.problems import ProblemError

RETRY_AFTER_SECONDS = 5  # an upload slot frees when an upload ends: soon, but not at once


class UploadSlots:
    """Counters of uploads in flight; used from the event loop only (no await inside)."""

    def __init__(self, *, max_total: int, max_per_org: int) -> None:
        self.max_total = max_total
        self.max_per_org = max_per_org
        self._per_org: Counter[UUID] = Counter()
        self._total = 0

    @contextmanager
    def hold(self, org_id: UUID) -> Iterator[None]:
        """One slot for the block, or a 429 (the org's cap) / 503 (the process's) problem."""
        retry = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        if self._per_org[org_id] >= self.max_per_org:
            raise ProblemError(
                429,
                "too-many-uploads",
                "Too many uploads",
                f"at most {self.max_per_org} uploads of one organisation at once; retry later",
                headers=retry,
            )
        if self._total >= self.max_total:
            raise ProblemError(
                503,
                "uploads-busy",
                "Uploads busy",
                "the service is taking as many uploads as it can; retry later",
                headers=retry,
            )
        self._per_org[org_id] += 1
        self._total += 1
        try:
            yield
        finally:
            self._total -= 1
            self._per_org[org_id] -= 1
            if not self._per_org[org_id]:
                del self._per_org[org_id]


def upload_slots(request: Request, *, max_total: int, max_per_org: int) -> UploadSlots:
    """The app's one counter (made on first use, so the app factory needs no change)."""
    slots: UploadSlots | None = getattr(request.app.state, "upload_slots", None)
    if slots is None:
        slots = UploadSlots(max_total=max_total, max_per_org=max_per_org)
        request.app.state.upload_slots = slots
    return slots
