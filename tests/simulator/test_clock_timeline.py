"""The fake clock and the timeline that drives simulated devices."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from edge.core.events import ContactChanged, Event
from edge.core.outputs import Output
from simulator.clock import FakeClock
from simulator.timeline import Timeline
from tests.edge.core.harness import make_harness

START = datetime(2026, 12, 1, tzinfo=UTC)


def test_fake_clock_moves_only_when_told_and_does_not_drift() -> None:
    clock = FakeClock(START)
    assert clock.now() == clock.now()
    for _ in range(10_000):
        clock.advance(0.1)
    assert clock.now().utc == START + timedelta(seconds=1000)
    with pytest.raises(ValueError, match="only moves forward"):
        clock.advance(-1)


def test_wall_clock_step_leaves_monotonic_alone() -> None:
    clock = FakeClock(START)
    before = clock.now()
    after = clock.step_wall_clock(3600)
    assert after.mono == before.mono
    assert after.utc - before.utc == timedelta(hours=1)


def test_naive_start_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        FakeClock(datetime(2026, 12, 1))


def test_timeline_runs_events_in_time_order_with_ticks_between() -> None:
    h = make_harness()
    clock = FakeClock(START)
    timeline = Timeline(clock, {"dev": h.controller}, tick_s=0.5)
    seen: list[tuple[float, str]] = []

    def observe(device: str, event: Event, outputs: list[Output]) -> None:
        seen.append((clock.now().mono - 1000.0, type(event).__name__))

    timeline.observe(observe)
    timeline.at(2.0, "dev", ContactChanged("gate", False))
    timeline.at(1.0, "dev", ContactChanged("gate", True))
    timeline.run_for(3.0)
    contacts = [t for t, name in seen if name == "ContactChanged"]
    assert contacts == [1.0, 2.0]
    ticks = [t for t, name in seen if name == "Tick"]
    assert ticks == [0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
