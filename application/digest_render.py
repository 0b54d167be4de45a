"""One project's digest as an email: subject, plain text and HTML, with stable links.

Rendered once per project and tick, for every recipient alike (the one-click unsubscribe link,
which differs per recipient, travels in the `List-Unsubscribe` header, not in the body), and
by the same code for the preview, the manual send and the scheduled send: the preview is
exactly what would be sent. Links point at the API's resource URLs under the configured
public base URL (stable: ids, never names).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from application.digest_content import (
    DigestSections,
    DigestWindow,
    DocumentChange,
    RaidChange,
    RaidDue,
    Section,
    StageDecision,
    WaitingSignOff,
)
from application.email_templates import render_email

TEMPLATE = "digest"
# A project name in a subject is cut here (the subject's own limit is 300 characters).
_SUBJECT_NAME_CHARS = 120


@dataclass(frozen=True, slots=True)
class DigestProject:
    """The project a digest is about (as the header shows it)."""

    org_id: UUID
    project_id: UUID
    code: str
    name: str


@dataclass(frozen=True, slots=True)
class RenderedDigest:
    """A digest ready to queue: the same for every recipient."""

    subject: str
    text: str
    html: str
    empty: bool


def _local(instant: datetime, tz: ZoneInfo) -> str:
    return instant.astimezone(tz).strftime("%a %d %b %Y %H:%M")


def window_label(window: DigestWindow, tz: ZoneInfo) -> str:
    """The week covered, in the org's own time and zone."""
    return f"{_local(window.start, tz)} to {_local(window.end, tz)} ({tz.key})"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


class _Links:
    def __init__(self, base_url: str, project_id: UUID) -> None:
        self.project = f"{base_url.rstrip('/')}/api/projects/{project_id}"

    def stage(self, stage_id: UUID) -> str:
        return f"{self.project}/stages/{stage_id}"

    def document(self, document_id: UUID) -> str:
        return f"{self.project}/artifacts/{document_id}"

    def raid(self, item_id: UUID) -> str:
        return f"{self.project}/raid/{item_id}"


def _section(section: Section[Any], items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"rows": items, "total": section.total, "more": section.more}


def _decisions(section: Section[StageDecision], links: _Links) -> dict[str, Any]:
    return _section(
        section,
        [
            {
                "title": d.title,
                "decision": d.decision,
                "reason": d.reason,
                "url": links.stage(d.stage_id),
            }
            for d in section.items
        ],
    )


def _on(w: WaitingSignOff) -> str:
    parts: list[str] = []
    if w.waiting_on:
        names = ", ".join(w.waiting_on)
        extra = w.waiting_count - len(w.waiting_on)
        parts.append(names + (f" and {extra} more" if extra > 0 else ""))
    elif w.anyone:
        parts.append("any signer")
    if w.external_pending:
        plural = "s" if w.external_pending != 1 else ""
        parts.append(f"{w.external_pending} external signer{plural}")
    return "; ".join(parts) or "the round to be completed"


def _waiting(section: Section[WaitingSignOff], links: _Links) -> dict[str, Any]:
    return _section(
        section,
        [{"title": w.title, "on": _on(w), "url": links.stage(w.stage_id)} for w in section.items],
    )


def _documents(section: Section[DocumentChange], links: _Links) -> dict[str, Any]:
    return _section(
        section,
        [
            {"name": d.name, "change": d.change, "url": links.document(d.document_id)}
            for d in section.items
        ],
    )


def _raid_changes(section: Section[RaidChange], links: _Links) -> dict[str, Any]:
    return _section(
        section,
        [
            {
                "kind": r.kind,
                "title": r.title,
                "status": r.status.replace("_", " "),
                "change": r.change,
                "url": links.raid(r.item_id),
            }
            for r in section.items
        ],
    )


def _raid_due(section: Section[RaidDue], links: _Links) -> dict[str, Any]:
    return _section(
        section,
        [
            {
                "kind": r.kind,
                "title": r.title,
                "owner": r.owner,
                "due_date": r.due_date.isoformat(),
                "url": links.raid(r.item_id),
            }
            for r in section.items
        ],
    )


def render_digest(
    project: DigestProject,
    sections: DigestSections,
    window: DigestWindow,
    tz: ZoneInfo,
    *,
    base_url: str,
    period: str | None,
) -> RenderedDigest:
    """The digest of one project for one window (`period`: the scheduled week, or None for
    a manual send, which is labelled by its date)."""
    links = _Links(base_url, project.project_id)
    when = period or f"to {window.end.astimezone(tz).date().isoformat()}"
    title = f"Weekly digest {when}"
    context = {
        "title": title,
        "project": {"name": project.name, "code": project.code, "url": links.project},
        "window_label": window_label(window, tz),
        "empty": sections.empty,
        "decisions": _decisions(sections.decisions, links),
        "waiting": _waiting(sections.waiting, links),
        "documents": _documents(sections.documents, links),
        "raid_changes": _raid_changes(sections.raid_changes, links),
        "raid_due": _raid_due(sections.raid_due, links),
    }
    bodies = render_email(TEMPLATE, context)
    name = _cut(project.name, _SUBJECT_NAME_CHARS)
    suffix = ": no changes" if sections.empty else ""
    subject = f"[{project.code}] {name}: weekly digest {when}{suffix}"
    return RenderedDigest(subject=subject, text=bodies.text, html=bodies.html, empty=sections.empty)
