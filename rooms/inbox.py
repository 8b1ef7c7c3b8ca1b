"""The rooms service's inbound queue: paho's thread puts, the service's loop drains.

Each item carries the moment it arrived (the link stamps it with the service's clock), so a
slow step never moves what was seen to later. When the queue is full the oldest item is
dropped; `take` says how many were lost since the last take, and the service then trusts no
zone until fresh readings arrive (a lost occupancy or link change must not leave a stale one).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Final

MAX_WAITING: Final = 100_000  # beyond this the oldest messages are dropped (and counted)
MAX_PAYLOAD_BYTES: Final = 8192  # a status is about 400 bytes, an occupancy 150


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message as it arrived: the feed judges it."""

    topic: str
    payload: bytes
    retained: bool = False
    oversized: bool = False  # too large to hand on: the payload is left out
    at: datetime | None = None  # when it arrived (None: when it is taken from the inbox)


@dataclass(frozen=True, slots=True)
class LinkState:
    """The service's own broker connection came up or went down."""

    up: bool
    at: datetime | None = None


Item = Inbound | LinkState


class Inbox:
    """A bounded queue with a wake-up: `put` from any thread, `drain` from the loop."""

    def __init__(self, max_waiting: int = MAX_WAITING) -> None:
        self._items: deque[Item] = deque()
        self._max = max_waiting
        self._cond = threading.Condition()
        self.dropped = 0
        self._taken_dropped = 0

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

    def take(self, limit: int = 10_000) -> tuple[list[Item], int]:
        """Take up to `limit` items, oldest first, and how many were dropped since last taken."""
        with self._cond:
            count = min(limit, len(self._items))
            lost, self._taken_dropped = self.dropped - self._taken_dropped, self.dropped
            return [self._items.popleft() for _ in range(count)], lost

    def wait(self, timeout_s: float) -> bool:
        """Wait until something is waiting (or the timeout); return whether it is."""
        with self._cond:
            return self._cond.wait_for(lambda: bool(self._items), timeout_s)
