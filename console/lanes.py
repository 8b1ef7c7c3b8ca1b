"""One queue per device, drained in turn, each behind a rate budget (a token bucket).

paho's thread only files a message into its device's lane (or, past the device's budget,
counts it and hands it back to be acknowledged at once); the collector's writer takes
batches round-robin across lanes, so a device that floods fills only its own lane and
another device's alarm waits at most one turn.

The budget is a token bucket per device: `rate_per_s` tokens a second up to `burst`. A
console that was away (restarted, or cut from the broker) receives at once what its
persistent session kept, so each (re)connection credits every device with what it could
have sent meanwhile (`credit(away_s)`).
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Final, Generic, TypeVar

T = TypeVar("T")

MAX_CREDIT: Final = 1_000_000.0  # the broker keeps at most this many per session


class _Bucket:
    __slots__ = ("at", "tokens")

    def __init__(self, tokens: float, at: float) -> None:
        self.tokens = tokens
        self.at = at


class Lanes(Generic[T]):
    """Per-device queues with rate budgets; `put` from any thread, `take` from one."""

    def __init__(
        self,
        rate_per_s: float,
        burst: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._clock = clock
        self._lanes: dict[str, deque[T]] = {}
        self._buckets: dict[str, _Bucket] = {}
        self._credit = 0.0
        self._over: Counter[str] = Counter()
        self._waiting = 0
        self._cond = threading.Condition()

    def __repr__(self) -> str:
        return f"<Lanes {len(self._lanes)} devices, {self._waiting} waiting>"

    def __len__(self) -> int:
        return self._waiting

    def put(self, lane: str, item: T) -> bool:
        """File `item` in its lane; False if the lane's device is over its budget."""
        now = self._clock()
        with self._cond:
            bucket = self._buckets.get(lane)
            if bucket is None:
                bucket = self._buckets[lane] = _Bucket(self.burst + self._credit, now)
            elif now > bucket.at:
                refill = (now - bucket.at) * self.rate_per_s
                if bucket.tokens < self.burst:
                    bucket.tokens = min(self.burst, bucket.tokens + refill)
                bucket.at = now
            if bucket.tokens < 1:
                self._over[lane] += 1
                return False
            bucket.tokens -= 1
            self._lanes.setdefault(lane, deque()).append(item)
            self._waiting += 1
            self._cond.notify()
            return True

    def credit(self, away_s: float) -> None:
        """Let every device send what it could have sent in `away_s` on top of its budget."""
        extra = min(MAX_CREDIT, max(0.0, away_s) * self.rate_per_s)
        with self._cond:
            self._credit = extra
            for bucket in self._buckets.values():
                bucket.tokens = min(bucket.tokens + extra, self.burst + MAX_CREDIT)

    def over_budget(self) -> Counter[str]:
        """Return (and reset) how many messages each device sent past its budget."""
        with self._cond:
            over, self._over = self._over, Counter()
        return over

    def take(self, most: int, wait_s: float, gather_s: float) -> list[T]:
        """Wait up to `wait_s` for a first item, `gather_s` more for others; then take up to
        `most`, one from each lane in turn."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._waiting > 0, wait_s):
                return []
            if gather_s > 0 and self._waiting < most:
                self._cond.wait_for(lambda: self._waiting >= most, gather_s)
            taken: list[T] = []
            while len(taken) < most and self._waiting:
                for lane in list(self._lanes):
                    queue = self._lanes[lane]
                    taken.append(queue.popleft())
                    self._waiting -= 1
                    if not queue:
                        del self._lanes[lane]
                    if len(taken) >= most:
                        break
            return taken
