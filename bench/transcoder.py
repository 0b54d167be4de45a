"""Cost of the escaping transcoder (decision 0013) against the library's, measured in one run.

`python -m bench.transcoder`: encodes a project snapshot (1,000 members) and a small event
with both and prints the time per encode and the ratio to the library's transcoder.
"""

from __future__ import annotations

import timeit
from typing import Any
from uuid import uuid4

from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, UUIDAsHex

from application.transcodings import TeaimTranscoder, register_domain_transcodings
from domain.project import Membership
from domain.roles import Role


def _transcoder(cls: type[JSONTranscoder]) -> JSONTranscoder:
    transcoder = cls()
    transcoder.register(UUIDAsHex())
    transcoder.register(DatetimeAsISO())
    register_domain_transcodings(transcoder)
    return transcoder


def _per_encode(transcoder: JSONTranscoder, value: Any, number: int) -> float:
    return min(timeit.repeat(lambda: transcoder.encode(value), number=number, repeat=5)) / number


def main() -> None:
    """Print microseconds per encode and the ratio, for each shape."""
    snapshot = {
        "id": uuid4(),
        "name": "Project",
        "members": {f"user-{i}": Membership(role=Role.MEMBER, signer=False) for i in range(1000)},
    }
    event = {"originator_id": uuid4(), "title": "hello", "fields": {"a": 1, "b": [1, 2, 3]}}
    library, escaping = _transcoder(JSONTranscoder), _transcoder(TeaimTranscoder)
    for name, value, number in (
        ("snapshot, 1000 members", snapshot, 200),
        ("small event", event, 20_000),
    ):
        base = _per_encode(library, value, number)
        ours = _per_encode(escaping, value, number)
        print(
            f"{name}: library {base * 1e6:.1f} us, escaping {ours * 1e6:.1f} us, x{ours / base:.2f}"
        )


if __name__ == "__main__":
    main()
