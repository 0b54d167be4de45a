"""Models of the digest subscription routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from application.digest_subscriptions import DigestSubscriptionsOverview
from interfaces.http.models import In

# RFC 5321 caps a path at 256 octets; the domain checks the shape (422 otherwise).
Address = Annotated[str, StringConstraints(min_length=3, max_length=320)]


class MyDigestSubscriptionIn(In):
    """Opt in (at `address`; default: your user id, if it is an address) or out."""

    subscribed: bool
    address: Address | None = Field(
        default=None, description="Where to receive the digest (ignored when opting out)."
    )


class DigestRecipientIn(In):
    """An external address to receive the project's weekly digest."""

    address: Address


class DigestRecipientOut(BaseModel):
    """One live recipient."""

    address: str
    user_id: str | None
    source: Literal["member", "external"]
    since: datetime


class DigestSubscriptionsOut(BaseModel):
    """Your subscription and how many receive the digest; the recipients for pm and above
    (null for others: addresses are personal data)."""

    subscribed: bool
    address: str | None
    count: int
    recipients: list[DigestRecipientOut] | None


def subscriptions_out(overview: DigestSubscriptionsOverview) -> DigestSubscriptionsOut:
    """The overview as the API shows it."""
    return DigestSubscriptionsOut(
        subscribed=overview.subscribed,
        address=overview.address,
        count=overview.count,
        recipients=None
        if overview.recipients is None
        else [
            DigestRecipientOut(address=s.address, user_id=s.user_id, source=s.source, since=s.since)
            for s in overview.recipients
        ],
    )
