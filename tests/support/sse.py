"""Parsing a text/event-stream (the bell's live stream) the way a browser would."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson


@dataclass
class SseEvent:
    """One server-sent event (or a comment, with `comment` set)."""

    event: str = "message"
    id: str | None = None
    data: str = ""
    comment: str | None = None
    retry: int | None = None

    def json(self) -> Any:
        """The data, parsed."""
        return orjson.loads(self.data)


@dataclass
class SseReader:
    """Parses a text/event-stream from an iterator of lines (blocking; the client times out)."""

    lines: Iterator[str]
    seen: list[SseEvent] = field(default_factory=list)

    def next(self) -> SseEvent:
        """The next event or comment."""
        current = SseEvent()
        started = False
        for line in self.lines:
            if line == "":
                if started:
                    self.seen.append(current)
                    return current
                continue
            started = True
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "":
                current.comment = value
            elif name == "event":
                current.event = value
            elif name == "id":
                current.id = value
            elif name == "data":
                current.data = value if not current.data else f"{current.data}\n{value}"
            elif name == "retry":
                current.retry = int(value)
        raise EOFError("the stream ended")

    def next_event(self, *kinds: str, skip: int = 10) -> SseEvent:
        """The next event of one of these kinds, skipping at most `skip` comments or others.

        Keep-alive comments arrive every second, so a stream that never sends the event fails
        here after about `skip` seconds rather than blocking until the suite's timeout.
        """
        for _ in range(skip + 1):
            event = self.next()
            if event.comment is None and event.retry is None and event.event in kinds:
                return event
        raise AssertionError(f"no {' or '.join(kinds)} event; got {self.seen[-skip:]}")
