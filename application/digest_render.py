"""One project's digest as an email: subject, plain text and HTML, with stable links.

Rendered once per project and tick, for every recipient alike (the one-click unsubscribe link,
which differs per recipient, travels in the `List-Unsubscribe` header, not in the body), and
by the same code for the preview, the manual send and the scheduled send: the preview is
exactly what would be sent. Links point at the API's resource URLs under the configured
public base URL (stable: ids, never names).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any, TypeVar
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
from domain.email import MAX_BODY_CHARS

T = TypeVar("T")

TEMPLATE = "digest"
# A project name in a subject is cut here (the subject's own limit is 300 characters).
_SUBJECT_NAME_CHARS = 120

# Budgets that keep every digest well inside `MAX_BODY_CHARS`, whatever the read models hold
# (a rejection reason may be 2,000 characters, and HTML escaping turns one `"` into five).
# Each user text is cut to its own length first; then each section lists rows only while
# their weight (user text measured AFTER HTML escaping, plus the row's link and markup) fits
# `_SECTION_BUDGET`; the rows left out join "and K more". So either body is at most the frame
# and header plus five section budgets: `BODY_BOUND`, asserted below and checked by the
# property test at the field maxima (tests/unit/application/test_digest_render_bounds.py).
# The text part holds the same user text unescaped, so it is never longer than the HTML.
_NAME_CHARS = 200  # project names, stage and RAID titles, document names
_REASON_CHARS = 400  # a rejection reason
_PERSON_CHARS = 100  # one signer's or owner's name
_ON_CHARS = 600  # the whole "waiting on ..." list
_WORD_CHARS = 40  # kinds, statuses, changes (internal words, cut all the same)
# A row's tags, attributes and fixed words (about 100 characters; counted generously).
_ROW_MARKUP = 300
# Weight of the rows one section lists at most; the heading, list and "more" line on top.
_SECTION_BUDGET = 16_000
_SECTION_MARKUP = 400
# The shared frame, headings, footer and the header's name, code, window and project link
# (with a public base URL of up to about 2,000 characters, the operator's setting).
_FRAME_CHARS = 12_000
_SECTIONS = 5
BODY_BOUND = _FRAME_CHARS + _SECTIONS * (_SECTION_BUDGET + _SECTION_MARKUP)
# Half the limit: room for template changes before a digest could ever be refused.
assert BODY_BOUND <= MAX_BODY_CHARS // 2, "digest budgets exceed half the email body limit"


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


def _weight(url: str, texts: Iterable[str | None]) -> int:
    # `html.escape` lengthens at least as much as Jinja's autoescape (`&quot;` against
    # `&#34;`), so this is an upper bound of what the row adds to the HTML.
    return _ROW_MARKUP + len(escape(url)) + sum(len(escape(t)) for t in texts if t)


def _section(section: Section[T], row: Callable[[T], tuple[dict[str, Any], int]]) -> dict[str, Any]:
    """The section's rows while their weight fits `_SECTION_BUDGET` (at most the items the
    query kept), and how many are left out ("and K more")."""
    rows: list[dict[str, Any]] = []
    spent = 0
    for item in section.items:
        built, weight = row(item)
        if spent + weight > _SECTION_BUDGET:
            break
        rows.append(built)
        spent += weight
    return {"rows": rows, "total": section.total, "more": max(0, section.total - len(rows))}


def _decisions(section: Section[StageDecision], links: _Links) -> dict[str, Any]:
    def row(d: StageDecision) -> tuple[dict[str, Any], int]:
        title = _cut(d.title, _NAME_CHARS)
        reason = None if d.reason is None else _cut(d.reason, _REASON_CHARS)
        url = links.stage(d.stage_id)
        built = {"title": title, "decision": d.decision, "reason": reason, "url": url}
        return built, _weight(url, (title, reason))

    return _section(section, row)


def _on(w: WaitingSignOff) -> str:
    parts: list[str] = []
    if w.waiting_on:
        # Names while they fit the list's budget; the others join "and K more".
        names: list[str] = []
        for name in w.waiting_on:
            cut = _cut(name, _PERSON_CHARS)
            if names and sum(len(n) + 2 for n in names) + len(cut) > _ON_CHARS - 80:
                break
            names.append(cut)
        extra = w.waiting_count - len(names)
        parts.append(", ".join(names) + (f" and {extra} more" if extra > 0 else ""))
    elif w.anyone:
        parts.append("any signer")
    if w.external_pending:
        plural = "s" if w.external_pending != 1 else ""
        parts.append(f"{w.external_pending} external signer{plural}")
    return _cut("; ".join(parts), _ON_CHARS) or "the round to be completed"


def _waiting(section: Section[WaitingSignOff], links: _Links) -> dict[str, Any]:
    def row(w: WaitingSignOff) -> tuple[dict[str, Any], int]:
        title, on, url = _cut(w.title, _NAME_CHARS), _on(w), links.stage(w.stage_id)
        return {"title": title, "on": on, "url": url}, _weight(url, (title, on))

    return _section(section, row)


def _documents(section: Section[DocumentChange], links: _Links) -> dict[str, Any]:
    def row(d: DocumentChange) -> tuple[dict[str, Any], int]:
        name, change = _cut(d.name, _NAME_CHARS), _cut(d.change, _WORD_CHARS)
        url = links.document(d.document_id)
        return {"name": name, "change": change, "url": url}, _weight(url, (name, change))

    return _section(section, row)


def _raid_changes(section: Section[RaidChange], links: _Links) -> dict[str, Any]:
    def row(r: RaidChange) -> tuple[dict[str, Any], int]:
        built = {
            "kind": _cut(r.kind, _WORD_CHARS),
            "title": _cut(r.title, _NAME_CHARS),
            "status": _cut(r.status.replace("_", " "), _WORD_CHARS),
            "change": _cut(r.change, _WORD_CHARS),
            "url": links.raid(r.item_id),
        }
        texts = (built["kind"], built["title"], built["status"], built["change"])
        return built, _weight(built["url"], texts)

    return _section(section, row)


def _raid_due(section: Section[RaidDue], links: _Links) -> dict[str, Any]:
    def row(r: RaidDue) -> tuple[dict[str, Any], int]:
        kind, title, url = (
            _cut(r.kind, _WORD_CHARS),
            _cut(r.title, _NAME_CHARS),
            links.raid(r.item_id),
        )
        owner = None if r.owner is None else _cut(r.owner, _PERSON_CHARS)
        due = r.due_date.isoformat()
        built = {"kind": kind, "title": title, "owner": owner, "due_date": due, "url": url}
        return built, _weight(url, (kind, title, owner, due))

    return _section(section, row)


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
        "project": {
            "name": _cut(project.name, _NAME_CHARS),
            "code": _cut(project.code, _WORD_CHARS),
            "url": links.project,
        },
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
