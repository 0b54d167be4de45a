"""The TEAIM application: every command of the write side behind one event store."""

from __future__ import annotations

from application.content import ContentCommands


class Teaim(ContentCommands):
    """Orgs, projects, members, stages, sign-offs, artifacts, RAID items and memories."""
