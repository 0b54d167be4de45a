"""Events as an older, looser address rule recorded them, written past today's rule.

The log keeps every event as it was written: an address accepted then (`a@[b.com`,
`a:victim@corp.com;`) is replayed as-is now, though no command would accept it today. These
helpers write such events through the ordinary aggregates, changing only the address on the
pending event, so tests can prove old data still loads and still never reaches a relay.
"""

from __future__ import annotations

from uuid import UUID, uuid4

from application.app import Teaim
from domain.digest_subscription import DigestSubscriptions, digest_subscriptions_id
from domain.email import Email, EmailKind
from domain.stamps import Stamp

# A valid stand-in, replaced by the legacy address before anything is saved.
_STAND_IN = "stand-in@example.com"


def legacy_email(
    app: Teaim,
    stamp: Stamp,
    to: str,
    *,
    kind: EmailKind = EmailKind.SIGNOFF_PACKAGE,
    mail_domain: str = "mail.teaim.test",
) -> Email:
    """Save an email queued to `to` as if the address rule of its time had accepted it."""
    email = Email.queue(
        email_id=uuid4(),
        kind=kind,
        to=_STAND_IN,
        subject="Sign-off package",
        text="Please review.\n",
        html="<p>Please review.</p>\n",
        mail_domain=mail_domain,
        stamp=stamp,
    )
    (queued,) = email.pending_events
    assert isinstance(queued, Email.Queued)
    object.__setattr__(queued, "to", to)  # events are frozen: this is the bypass
    object.__setattr__(email, "to", to)
    app.save(email)
    return email


def legacy_external(app: Teaim, stamp: Stamp, project_id: UUID, address: str) -> None:
    """Put `address` on the project's digest list as an older rule would have."""
    subs = (
        app.repository.get(digest_subscriptions_id(project_id))
        if _listed(app, project_id)
        else None
    )
    if subs is None:
        subs = DigestSubscriptions.open(project_id=project_id, stamp=stamp)
    assert isinstance(subs, DigestSubscriptions)
    subs._trigger(subs.ExternalAdded, stamp.for_project(project_id), address=address)
    app.save(subs)


def _listed(app: Teaim, project_id: UUID) -> bool:
    return app.recorder.select_events(digest_subscriptions_id(project_id), limit=1) != []
