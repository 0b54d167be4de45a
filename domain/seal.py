"""Seals: periodic records of chain heads, for tamper evidence.

Three scopes, one aggregate class (its topic is what stored seals already carry):

- a project: the aggregates stamped with the project (`seal_id_for(project)`);
- an org: the aggregates of the org stamped with no project (org settings, denials, audit
  reads, inboxes), sealed per org (`org_seal_id_for(org)`);
- the log: the scope seals written since its previous seal, so one hash (the newest log
  seal's), kept outside the database, commits to every scope seal before it (`LOG_SEAL_ID`,
  stamped with `LOG_ORG`, an org no tenant has).

Every seal pins only the chains that moved since its scope's previous seal (the first pins
them all), so a seal is as large as the news, not the scope. Its hash covers the previous
seal's hash, so the newest seal commits to every head pinned before it. Seals written when a
project's seal still pinned every head keep the same shape and verify the same way.
"""

from __future__ import annotations

from dataclasses import field
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.base import TeaimAggregate
from domain.errors import InvalidValueError, RuleViolationError
from domain.stamps import Stamp

# The log seal's tenant: the nil UUID, which no org is ever created with (ids are uuid4).
LOG_ORG = UUID(int=0)
LOG_SEAL_ID = uuid5(NAMESPACE_URL, "teaim:log:seal")


def seal_id_for(project_id: UUID) -> UUID:
    """The one seal aggregate of a project: deterministic, so two sealers conflict, not fork."""
    return uuid5(NAMESPACE_URL, f"teaim:project:{project_id}:seal")


def org_seal_id_for(org_id: UUID) -> UUID:
    """The one seal aggregate of an org's aggregates that belong to no project."""
    return uuid5(NAMESPACE_URL, f"teaim:org:{org_id}:seal")


def scope_seal_id(org_id: UUID, project_id: UUID | None) -> UUID:
    """The seal aggregate that seals events stamped with this org and project."""
    if org_id == LOG_ORG:
        return LOG_SEAL_ID
    return org_seal_id_for(org_id) if project_id is None else seal_id_for(project_id)


class ProjectSeal(TeaimAggregate):
    """The seals of one scope; each `Sealed` event pins the head of every chain of the scope
    that moved since the previous one (the seal aggregate's own included).

    A head is `{"version": int, "position": int, "chain_hash": hex}` per aggregate id. Whoever
    rewrites an aggregate's history consistently (contents and chain hashes) still cannot make
    its head match the chain hash a seal recorded before the rewrite; with a seal key, the
    seal's MAC keeps whoever lacks the key from rewriting the seals as well.
    """

    # None for an org's seal and the log's (see the module doc).
    project_id: UUID | None = field(init=False)
    seal_count: int = field(init=False)
    last_seal_hash: str | None = field(init=False)
    # The newest position, outside this seal aggregate, that the last seal covered.
    covered_position: int = field(init=False)

    class Started(TeaimAggregate.Created):
        def apply(self, seal: ProjectSeal) -> None:
            seal.project_id = self.project_id
            seal.seal_count = 0
            seal.last_seal_hash = None
            seal.covered_position = 0

    class Sealed(TeaimAggregate.Event):
        # Version 1 had no MAC; see upcast_v1_v2.
        class_version = 2

        through_position: int
        heads: dict[str, dict[str, Any]]
        previous_seal_hash: str | None
        seal_hash: str
        # HMAC of the seal hash under a key the database never sees (None: no key configured).
        seal_mac: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Seals made before keys existed carry no MAC."""
            state["seal_mac"] = None

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

    @classmethod
    def start_scope(cls, *, seal_id: UUID, stamp: Stamp) -> ProjectSeal:
        """An org's or the log's seal aggregate (stamped with no project), before its first seal."""
        if stamp.project_id is not None:
            raise InvalidValueError("a project's seal starts with `start`")
        seal: ProjectSeal = cls._create_stamped(cls.Started, id=seal_id, stamp=stamp)
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
        seal_mac: str | None = None,
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
            seal_mac=seal_mac,
        )


def covered_position(seal_id: UUID, heads: dict[str, dict[str, Any]]) -> int:
    """The newest position among the heads of every aggregate but the seal itself."""
    own = str(seal_id)
    return max(
        (int(head["position"]) for aggregate, head in heads.items() if aggregate != own),
        default=0,
    )
