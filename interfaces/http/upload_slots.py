"""How many uploads (and URL fetches), or package ZIPs, one API process runs at once, in all
and per org.

Each upload in flight holds a blob-writer thread and a request body for as long as the client
takes, so they are counted: beyond `UPLOADS_MAX_PER_ORG` a tenant's next upload is refused
with 429, beyond `UPLOADS_MAX_CONCURRENT` anyone's with 503, both with Retry-After, at once
and before a byte of the body is read (decision 0023). A queue would only turn a noisy
tenant's burst into everyone's wait. Counted in this process: the bound is on this process's
threads and memory, not a cluster-wide quota (that is the rate limit).

A sign-off package ZIP (decision 0029) holds a worker thread and reads up to 50 blobs for as
long as the client takes to download it: the same kind of counter, its own caps
(`ZIP_MAX_PER_ORG`, `ZIP_MAX_CONCURRENT`), its slot released when the stream ends, however
it ends (`acquire` hands back the release).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from uuid import UUID

from starlette.requests import Request

from interfaces.http.problems import ProblemError

RETRY_AFTER_SECONDS = 5  # an upload slot frees when an upload ends: soon, but not at once


class UploadSlots:
    """Counters of work in flight (uploads unless named otherwise). A lock guards them: the
    uploads count on the event loop, the ZIP route from a worker thread."""

    def __init__(
        self,
        *,
        max_total: int,
        max_per_org: int,
        slug: str = "uploads",
        noun: str = "uploads",
        retry_after: int = RETRY_AFTER_SECONDS,
    ) -> None:
        self.max_total = max_total
        self.max_per_org = max_per_org
        self.slug, self.noun, self.retry_after = slug, noun, retry_after
        self._per_org: Counter[UUID] = Counter()
        self._total = 0
        self._lock = threading.Lock()

    def held(self, org_id: UUID | None = None) -> int:
        """Slots held now: the org's, or everyone's."""
        with self._lock:
            return self._total if org_id is None else self._per_org[org_id]

    def acquire(self, org_id: UUID) -> Callable[[], None]:
        """One slot, or a 429 (the org's cap) / 503 (the process's) problem; the answer frees
        it (calling it again does nothing)."""
        retry = {"Retry-After": str(self.retry_after)}
        with self._lock:
            if self._per_org[org_id] >= self.max_per_org:
                raise ProblemError(
                    429,
                    f"too-many-{self.slug}",
                    f"Too many {self.noun}",
                    f"at most {self.max_per_org} {self.noun} of one organisation at once;"
                    " retry later",
                    headers=retry,
                )
            if self._total >= self.max_total:
                raise ProblemError(
                    503,
                    f"{self.slug}-busy",
                    f"{self.noun.capitalize()} busy",
                    f"the service is taking as many {self.noun} as it can; retry later",
                    headers=retry,
                )
            self._per_org[org_id] += 1
            self._total += 1
        released = threading.Event()

        def release() -> None:
            with self._lock:
                if released.is_set():
                    return
                released.set()
                self._total -= 1
                self._per_org[org_id] -= 1
                if not self._per_org[org_id]:
                    del self._per_org[org_id]

        return release

    @contextmanager
    def hold(self, org_id: UUID) -> Iterator[None]:
        """One slot for the block, or a 429 (the org's cap) / 503 (the process's) problem."""
        release = self.acquire(org_id)
        try:
            yield
        finally:
            release()


def upload_slots(request: Request, *, max_total: int, max_per_org: int) -> UploadSlots:
    """The app's one counter (made on first use, so the app factory needs no change)."""
    slots: UploadSlots | None = getattr(request.app.state, "upload_slots", None)
    if slots is None:
        slots = UploadSlots(max_total=max_total, max_per_org=max_per_org)
        request.app.state.upload_slots = slots
    return slots


# A package ZIP may take a while to download: retry later than an upload.
ZIP_RETRY_AFTER_SECONDS = 15
_ZIP_LOCK = threading.Lock()  # the ZIP route runs in worker threads: one counter per app


def zip_slots(request: Request, *, max_total: int, max_per_org: int) -> UploadSlots:
    """The app's one counter of package ZIPs streaming (made on first use)."""
    with _ZIP_LOCK:
        slots: UploadSlots | None = getattr(request.app.state, "zip_slots", None)
        if slots is None:
            slots = UploadSlots(
                max_total=max_total,
                max_per_org=max_per_org,
                slug="package-zips",
                noun="package downloads",
                retry_after=ZIP_RETRY_AFTER_SECONDS,
            )
            request.app.state.zip_slots = slots
        return slots
