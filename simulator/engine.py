"""A discrete-event engine on simulated seconds: processes are generators that yield delays.

    def walker(world):
        yield 60.0            # a minute later…
        world.tap(...)        # …act, at engine.now

Time jumps from one happening to the next, so a day runs as fast as the agents answer;
a `before` hook given to run_until may hold it back to a chosen speed.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

Process = Generator[float, None, None]


@dataclass(order=True)
class _Entry:
    at: float
    order: int
    action: Process | Callable[[], None] = field(compare=False)


class Engine:
    """The simulation's clock (seconds since the day's start) and its agenda."""

    def __init__(self) -> None:
        self.now = 0.0
        self._agenda: list[_Entry] = []
        self._order = itertools.count()

    def __repr__(self) -> str:
        return f"<Engine now={self.now:.1f} pending={len(self._agenda)}>"

    def spawn(self, process: Process, at: float | None = None) -> None:
        """Start a process at `at` (default: now)."""
        self._push(self.now if at is None else at, process)

    def call_at(self, at: float, action: Callable[[], None]) -> None:
        """Run `action()` at `at`."""
        self._push(at, action)

    def _push(self, at: float, action: Process | Callable[[], None]) -> None:
        heapq.heappush(self._agenda, _Entry(max(at, self.now), next(self._order), action))

    def run_until(self, until: float, before: Callable[[float], None] | None = None) -> None:
        """Run every happening due by `until`; call `before(at)` ahead of each one."""
        while self._agenda and self._agenda[0].at <= until:
            if before is not None:
                # Called before taking the next happening: `before` may add earlier ones
                # (a request from outside, at the time real time has reached).
                before(self._agenda[0].at)
            entry = heapq.heappop(self._agenda)
            self.now = max(self.now, entry.at)
            if callable(entry.action) and not isinstance(entry.action, Generator):
                entry.action()
                continue
            try:
                delay = next(entry.action)
            except StopIteration:
                continue
            self._push(self.now + max(0.0, delay), entry.action)
        self.now = max(self.now, until)
