"""An audit log that holds no stored links: for unit tests of the verification walk."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from application.ports import ChainHead


class NoStoredLinks:
    """Answers `chain_links` with nothing found (a store whose moved chains lost their rows);
    the walk calls nothing else of its log."""

    def __init__(self) -> None:
        self.asked: list[tuple[UUID, int]] = []

    def chain_links(self, keys: Sequence[tuple[UUID, int]]) -> dict[tuple[UUID, int], ChainHead]:
        self.asked.extend(keys)
        return {}
