"""Project seals: periodic records of every chain head of a project, for tamper evidence."""

from __future__ import annotations

from dataclasses import field
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.base import TeaimAggregate
from domain.errors import InvalidValueError, RuleViolationError
from domain.stamps import Stamp


def seal_id_for(project_id: UUID) -> UUID:
    """The one seal aggregate of a project: deterministic, so two sealers conflict, not fork."""
    return uuid5(NAMESPACE_URL, f"teaim:project:{project_id}:seal")


class ProjectSeal(TeaimAggregate):
    """The seals of one project; each `Sealed` event pins the head of every chain it saw.

    A head is `{"version": int, "position": int, "chain_hash": hex}` per aggregate id. Whoever
    rewrites an aggregate's history consistently (contents and chain hashes) still cannot make
    its head match the chain hash a seal recorded before the rewrite.
    """

    project_id: UUID = field(init=False)
    seal_count: int = field(init=False)
    last_seal_hash: str | None = field(init=False)
    # The newest position, outside this seal aggregate, that the last seal covered.
    covered_position: int = field(init=False)

    class Started(TeaimAggregate.Created):
        def apply(self, seal: ProjectSeal) -> None:
            assert self.project_id is not None
            seal.project_id = self.project_id
            seal.seal_count = 0
            seal.last_seal_hash = None
            seal.covered_position = 0

    class Sealed(TeaimAggregate.Event):
        through_position: int
        heads: dict[str, dict[str, Any]]
        previous_seal_hash: str | None
        seal_hash: str

        def apply(self, seal: ProjectSeal) -> None:
            seal.seal_count += 1
            seal.last_seal_hash = self.seal_hash
            seal.covered_position = covered_position(seal.id, self.heads)

    @classmethod
    def start(cls, *, project_id: UUID, stamp: Stamp) -> ProjectSeal:
        """The project's seal aggregate, before its first seal."""
        seal: ProjectSeal = cls._create_stamped(
            cls.Started, id=seal_id_for(project_id), stamp=stamp.for_project(project_id)
        )
        return seal

    def is_current(self, heads: dict[str, dict[str, Any]]) -> bool:
        """Whether the last seal already covers everything these heads show."""
        return self.seal_count > 0 and covered_position(self.id, heads) <= self.covered_position

    def seal(
        self,
        *,
        heads: dict[str, dict[str, Any]],
        through_position: int,
        seal_hash: str,
        stamp: Stamp,
    ) -> None:
        """Record the heads (hashed by the caller, over this seal's predecessor too)."""
        if not heads:
            raise InvalidValueError("a seal records at least one chain head")
        if self.is_current(heads):
            raise RuleViolationError("nothing new to seal", project_id=self.project_id)
        self._trigger(
            self.Sealed,
            stamp,
            through_position=through_position,
            heads=heads,
            previous_seal_hash=self.last_seal_hash,
            seal_hash=seal_hash,
        )


def covered_position(seal_id: UUID, heads: dict[str, dict[str, Any]]) -> int:
    """The newest position among the heads of every aggregate but the seal itself."""
    own = str(seal_id)
    return max(
        (int(head["position"]) for aggregate, head in heads.items() if aggregate != own),
        default=0,
    )
