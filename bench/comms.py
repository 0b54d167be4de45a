"""Comms benchmarks in one run: the outbox against smtplib, and one digest tick at scale.

`python -m bench.comms` runs both parts (each can run alone: `python -m bench.comms_outbox`,
`python -m bench.comms_digest`); each prints its figures and a ratio against a baseline
measured in the same run.
"""

from __future__ import annotations

from bench import comms_digest, comms_outbox


def main() -> None:
    comms_outbox.main()
    comms_digest.main()


if __name__ == "__main__":
    main()
