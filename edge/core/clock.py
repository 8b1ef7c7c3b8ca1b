"""Time as an input: an instant carries both a monotonic reading and the wall clock.

Timers (relock, held-open, presence hold) run on the monotonic reading, so a wall-clock
step — a Pi without a real-time clock boots in the past and NTP jumps it forward — never
fires an alarm or stretches an unlock. Schedules, validity and anti-passback forgiveness
use the wall clock, in the site's time zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Instant:
    """One moment: `mono` seconds on a monotonic clock, `utc` an aware UTC datetime."""

    mono: float
    utc: datetime

    def __post_init__(self) -> None:
        if self.utc.tzinfo is None or self.utc.utcoffset() != timedelta(0):
            raise ValueError(f"Instant.utc must be an aware UTC datetime, got {self.utc!r}")

    def after(self, seconds: float) -> Instant:
        """Return the instant `seconds` later on both clocks."""
        return Instant(self.mono + seconds, self.utc + timedelta(seconds=seconds))

    @classmethod
    def at(cls, utc: datetime, mono: float | None = None) -> Instant:
        """Build an instant from a wall-clock time (aware, any zone); mono defaults to its epoch."""
        utc = utc.astimezone(UTC)
        return cls(utc.timestamp() if mono is None else mono, utc)


class Clock(Protocol):
    """Where the runtime reads the time; the simulator and tests pass a fake one."""

    def now(self) -> Instant:
        """Return the current instant."""
        ...


def utc_text(moment: datetime) -> str:
    """Return an aware time as the contract writes it: UTC, milliseconds, "Z"."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
