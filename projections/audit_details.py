"""What the audit feed keeps of an event's payload: bounded, so every event stays projectable.

The feed's `details` column feeds a generated tsvector, and PostgreSQL refuses a tsvector over
1 MB: one event too large for it would stop the audit read model for every org. So:

- a seal keeps its summary (how many chain heads, its hash and its predecessor's), never the
  heads themselves, which grow with the project (replay and verify read them from the events);
- any other payload larger than `MAX_DETAILS_BYTES` once serialised is cut down: long texts
  are shortened and long collections keep their first entries, each cut marked, and a payload
  still too large after that is replaced by a note of its size.

An email's bodies (up to 200,000 characters each) and its unsubscribe link (it carries a
token that acts for the recipient) are never in the feed: an `email.queued` row keeps who it is
for, what it is and its subject; the log keeps the message.

The migration bounds the text the search vector is built from as well (a second, SQL-side
limit), so neither an old row nor a future event type can overflow it.
"""

from __future__ import annotations

from typing import Any

import orjson

from domain.email import Email
from domain.seal import ProjectSeal
from projections.dispatch import is_event

# A serialised payload up to this size is kept whole (every ordinary event is far smaller).
MAX_DETAILS_BYTES = 64 * 1024
# When a payload is cut down: the characters a text keeps, and the entries a list or object
# keeps, before the cut is marked.
MAX_TEXT_CHARS = 2000
MAX_ENTRIES = 50
# Marks a cut (a key no payload field uses: fields are identifiers).
OMITTED = "…omitted"
# Payload fields nobody should be handed (a signing token's hash); replay keeps the raw event.
WITHHELD = frozenset({"token_hash"})
# What an email's queueing shows of its payload (not its bodies, not its unsubscribe token).
EMAIL_QUEUED_DETAILS = ("kind", "to", "subject", "message_id", "period", "ref")


def feed_details(event: object, payload: dict[str, Any]) -> dict[str, Any]:
    """The details the feed shows for one event's payload (bounded whatever the payload)."""
    if is_event(event, ProjectSeal.Sealed):
        return seal_summary(event)
    if is_event(event, Email.Queued):
        return bounded({key: payload[key] for key in EMAIL_QUEUED_DETAILS if key in payload})
    kept = {key: value for key, value in payload.items() if key not in WITHHELD}
    return bounded(kept)


def seal_summary(event: ProjectSeal.Sealed) -> dict[str, Any]:
    """A seal as the feed shows it: how many heads it pinned, through where, and its hashes."""
    return {
        "aggregates": len(event.heads),
        "through_position": event.through_position,
        "seal_hash": event.seal_hash,
        "previous_seal_hash": event.previous_seal_hash,
    }


def bounded(details: dict[str, Any]) -> dict[str, Any]:
    """`details` itself when it serialises within `MAX_DETAILS_BYTES`, else a cut-down copy."""
    size = len(orjson.dumps(details))
    if size <= MAX_DETAILS_BYTES:
        return details
    cut = _cut(details)
    if isinstance(cut, dict) and len(orjson.dumps(cut)) <= MAX_DETAILS_BYTES:
        return {**cut, OMITTED: f"details cut down from {size} bytes"}
    return {OMITTED: f"details of {size} bytes left out; replay shows the event"}


def _cut(value: Any, depth: int = 0) -> Any:
    """A copy with texts shortened and collections trimmed (and nesting past 8 dropped)."""
    if isinstance(value, str):
        if len(value) <= MAX_TEXT_CHARS:
            return value
        return value[:MAX_TEXT_CHARS] + f" [{OMITTED} {len(value) - MAX_TEXT_CHARS} chars]"
    if depth >= 8 and isinstance(value, dict | list):
        return f"[{OMITTED} nested value]"
    if isinstance(value, dict):
        items = list(value.items())
        kept: dict[str, Any] = {str(k): _cut(v, depth + 1) for k, v in items[:MAX_ENTRIES]}
        if len(items) > MAX_ENTRIES:
            kept[OMITTED] = f"{len(items) - MAX_ENTRIES} more entries"
        return kept
    if isinstance(value, list):
        trimmed = [_cut(v, depth + 1) for v in value[:MAX_ENTRIES]]
        if len(value) > MAX_ENTRIES:
            trimmed.append(f"[{OMITTED} {len(value) - MAX_ENTRIES} more items]")
        return trimmed
    return value
