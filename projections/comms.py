"""The comms read models, maintained by one tracked projection: `org_comms` (each org's
schedule settings) and `outbox_emails` (the outbox, without bodies).

One projection rather than two, for the reason `projections/lists.py` gives: each runner
holds two connections (its LISTEN and its worker) in every process that hosts projections,
and both tables are cheap to derive, so one runner reads and decodes the log once for both.
The price is a shared fate: a poison event stops both.
"""

from __future__ import annotations

from typing import ClassVar

from projections.dispatch import EventHandlers, tables_of
from projections.org_comms import OrgCommsRows
from projections.outbox_emails import OutboxEmailRows

PARTS: tuple[type[EventHandlers], ...] = (OrgCommsRows, OutboxEmailRows)


class CommsProjection(EventHandlers):
    """Each org's comms settings and the outbox's emails."""

    name: ClassVar[str] = "comms"
    parts: ClassVar[tuple[type[EventHandlers], ...]] = PARTS
    tables: ClassVar[tuple[str, ...]] = tables_of(PARTS)
