"""The rooms service's inbound queue: paho's thread puts, the service's loop drains."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Final

MAX_WAITING: Final = 100_000  # beyond this the oldest messages are dropped (and counted)


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message as it arrived: the feed judges it."""

    topic: str
    payload: bytes
    retained: bool = False
    oversized: bool = False  # too large to hand on: the payload is left out


@dataclass(frozen=True, slots=True)
class LinkState:
    """The service's own broker connection came up or went down."""

    up: bool


Item = Inbound | LinkState


class Inbox:
    """A bounded queue with a wake-up: `put` from any thread, `drain` from the loop."""

    def __init__(self, max_waiting: int = MAX_WAITING) -> None:
        self._items: deque[Item] = deque()
        self._max = max_waiting
        self._cond = threading.Condition()
        self.dropped = 0

    def __repr__(self) -> str:
        return f"<Inbox waiting={len(self._items)} dropped={self.dropped}>"

    def put(self, item: Item) -> None:
        """Add an item (any thread); never blocks, drops the oldest message when full."""
        with self._cond:
            if len(self._items) >= self._max:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            self._cond.notify_all()

    def drain(self, limit: int = 10_000) -> list[Item]:
        """Take up to `limit` items, oldest first."""
        with self._cond:
            count = min(limit, len(self._items))
            return [self._items.popleft() for _ in range(count)]

    def wait(self, timeout_s: float) -> bool:
        """Wait until something is waiting (or the timeout); return whether it is."""
        with self._cond:
            return self._cond.wait_for(lambda: bool(self._items), timeout_s)
