"""A fake clock for tests and the simulator: time moves only when it is told to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from edge.core.clock import Instant


class FakeClock:
    """A clock that starts at `start` (aware) and moves only by `advance` or `set`."""

    def __init__(self, start: datetime, mono: float = 1000.0) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware start time, e.g. datetime(..., tzinfo=UTC)")
        self._utc = start.astimezone(UTC)
        self._mono = mono

    def __repr__(self) -> str:
        return f"<FakeClock {self._utc.isoformat()} mono={self._mono:.3f}>"

    def now(self) -> Instant:
        """Return the current fake instant."""
        return Instant(self._mono, self._utc)

    def advance(self, seconds: float) -> Instant:
        """Move both clocks forward by `seconds`; return the new instant."""
        if seconds < 0:
            raise ValueError(f"a clock only moves forward; got {seconds} s")
        self._mono += seconds
        self._utc += timedelta(seconds=seconds)
        return self.now()

    def step_wall_clock(self, seconds: float) -> Instant:
        """Jump the wall clock only (an NTP step); the monotonic clock does not move."""
        self._utc += timedelta(seconds=seconds)
        return self.now()
