"""A timeline of simulated happenings, run against device cores on a fake clock."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from edge.core.controller import Controller
from edge.core.events import Event, Tick
from edge.core.outputs import Output
from simulator.clock import FakeClock

Observer = Callable[[str, Event, list[Output]], None]


@dataclass(order=True)
class _Entry:
    mono: float
    order: int
    device: str = field(compare=False)
    action: Event | Callable[[], None] = field(compare=False)


class Timeline:
    """Runs events at their times on several devices, ticking them as an agent's loop would."""

    def __init__(
        self, clock: FakeClock, devices: dict[str, Controller], tick_s: float = 0.5
    ) -> None:
        self.clock = clock
        self.devices = devices
        self.tick_s = tick_s
        self._queue: list[_Entry] = []
        self._order = itertools.count()
        self._observers: list[Observer] = []

    def __repr__(self) -> str:
        return (
            f"<Timeline devices={sorted(self.devices)} pending={len(self._queue)} {self.clock!r}>"
        )

    def observe(self, observer: Observer) -> None:
        """Call `observer(device, event, outputs)` after every event a device handles."""
        self._observers.append(observer)

    def at(self, offset_s: float, device: str, action: Event | Callable[[], None]) -> None:
        """Schedule an event for a device (or a callable) `offset_s` seconds from now."""
        entry = _Entry(self.clock.now().mono + offset_s, next(self._order), device, action)
        heapq.heappush(self._queue, entry)

    def send(self, device: str, event: Event) -> list[Output]:
        """Hand an event to a device now and tell the observers."""
        outputs = self.devices[device].handle(event, self.clock.now())
        for observer in self._observers:
            observer(device, event, outputs)
        return outputs

    def run_until(self, mono: float) -> None:
        """Run every scheduled event up to `mono`, ticking every device every `tick_s`."""
        while True:
            now = self.clock.now().mono
            next_event = self._queue[0].mono if self._queue else float("inf")
            next_tick = now + self.tick_s
            target = min(next_event, next_tick, mono)
            if target > now:
                self.clock.advance(target - now)
                for name in self.devices:
                    self.send(name, Tick())
            if self._queue and self._queue[0].mono <= self.clock.now().mono:
                entry = heapq.heappop(self._queue)
                if callable(entry.action):
                    entry.action()
                else:
                    self.send(entry.device, entry.action)
                continue
            if self.clock.now().mono >= mono:
                return

    def run_for(self, seconds: float) -> None:
        """Run the timeline for `seconds` of simulated time."""
        self.run_until(self.clock.now().mono + seconds)
