"""A fake clock for tests and the simulator: time moves only when it is told to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from edge.core.clock import Instant


class FakeClock:
    """A clock that starts at `start` (aware) and moves only by `advance` or `set`.

    The wall clock is derived from the monotonic reading (plus any steps), so thousands of
    small advances do not accumulate rounding drift.
    """

    def __init__(self, start: datetime, mono: float = 1000.0) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware start time, e.g. datetime(..., tzinfo=UTC)")
        self._start_utc = start.astimezone(UTC)
        self._start_mono = mono
        self._mono = mono
        self._wall_step = timedelta(0)

    def __repr__(self) -> str:
        return f"<FakeClock {self.now().utc.isoformat()} mono={self._mono:.3f}>"

    def now(self) -> Instant:
        """Return the current fake instant."""
        elapsed = timedelta(seconds=round(self._mono - self._start_mono, 6))
        return Instant(self._mono, self._start_utc + elapsed + self._wall_step)

    def advance(self, seconds: float) -> Instant:
        """Move both clocks forward by `seconds`; return the new instant."""
        if seconds < 0:
            raise ValueError(f"a clock only moves forward; got {seconds} s")
        self._mono += seconds
        return self.now()

    def step_wall_clock(self, seconds: float) -> Instant:
        """Jump the wall clock only (an NTP step); the monotonic clock does not move."""
        self._wall_step += timedelta(seconds=seconds)
        return self.now()
