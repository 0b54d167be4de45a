"""What copy-on-write fast-forwards cost, against the library's in-place fast-forward.

Usage: uv run python -m bench.aggregate_cache [--members 50] [--rounds 2000]

Both repositories run in the same process over the same in-memory event store (so only the
cache differs), on a project of `--members` members:
  reads:        shared reads of an unchanged project (the hot path: no copy on either side);
  write + read: one member added, then one shared read (which fast-forwards: the library
                applies the event in place, ours to a copy it then publishes).
Ratios above 1 mean ours is slower.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from uuid import UUID

from eventsourcing.application import Repository

from application.aggregate_cache import CopyOnWriteRepository
from application.app import Teaim
from domain.roles import Role
from tests.support.apps import make_app, seed_org


def _library(app: Teaim) -> None:
    ours = app.repository
    library: Repository[UUID] = Repository(
        event_store=ours.event_store,
        snapshot_store=ours.snapshot_store,
        fastforward=ours.fastforward,
        deepcopy_from_cache=ours.deepcopy_from_cache,
    )
    library.cache = ours.cache
    # The baseline swaps the library's own repository back in.
    app._repository = library


def _timed(action: Callable[[int], None], rounds: int) -> float:
    started = time.perf_counter()
    for n in range(rounds):
        action(n)
    return time.perf_counter() - started


def measure(*, copy_on_write: bool, members: int, rounds: int) -> tuple[float, float]:
    app = make_app(cached=True)
    assert isinstance(app.repository, CopyOnWriteRepository)
    if not copy_on_write:
        _library(app)
    _, project, owner = seed_org(app)
    for n in range(members):
        app.add_member(
            ctx=owner, project_id=project, user_id=f"m{n}", role=Role.MEMBER, signer=False
        )

    def read(_: int) -> None:
        app.get_project(ctx=owner, project_id=project)

    def write_then_read(n: int) -> None:
        app.add_member(
            ctx=owner, project_id=project, user_id=f"w{n}", role=Role.MEMBER, signer=False
        )
        app.get_project(ctx=owner, project_id=project)

    return _timed(read, rounds), _timed(write_then_read, rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    sizes = {"members": args.members, "rounds": args.rounds}
    base_reads, base_writes = measure(copy_on_write=False, **sizes)
    reads, writes = measure(copy_on_write=True, **sizes)
    print(f"project of {args.members} members, {args.rounds} rounds each")
    print(
        f"reads:        library {base_reads:.3f}s  ours {reads:.3f}s"
        f"  ratio {reads / base_reads:.2f}"
    )
    print(
        f"write + read: library {base_writes:.3f}s  ours {writes:.3f}s"
        f"  ratio {writes / base_writes:.2f}"
    )


if __name__ == "__main__":
    main()
