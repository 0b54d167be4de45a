"""The RFC 9457 problem every error answer is (documented on each route's error statuses)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class ProblemOut(BaseModel):
    """An error (`application/problem+json`): what went wrong, and the request id to quote."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    instance: str
    request_id: str | None
    errors: list[dict[str, Any]] | None = None
