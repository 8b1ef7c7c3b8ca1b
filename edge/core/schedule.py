"""Weekly schedules in the site's time zone, with holidays and closure days.

On a holiday or a closure day the weekday windows do not apply; only the schedule's
`on_holidays` ranges do (none: closed all day). A range whose end is not after its start
runs past midnight into the next day.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Protocol

from edge.errors import EdgeError

MONDAY, TUESDAY, WEDNESDAY, THURSDAY, FRIDAY, SATURDAY, SUNDAY = range(7)
WEEKDAYS = frozenset(range(5))
EVERY_DAY = frozenset(range(7))


class ScheduleError(EdgeError, ValueError):
    """A schedule or calendar definition is malformed."""


class HolidayCalendar(Protocol):
    """Tells whether a local date is a day off for the whole site."""

    def is_holiday(self, day: date) -> bool:
        """Return True if `day` is a public holiday or a site closure day."""
        ...


@dataclass(frozen=True, slots=True)
class NoHolidays:
    """A calendar without holidays."""

    def is_holiday(self, day: date) -> bool:
        """Return False: every day is a working day."""
        return False


@dataclass(frozen=True, slots=True)
class ClosureDays:
    """Days the site is closed: every year on `yearly` (month, day), and on `dates`."""

    yearly: frozenset[tuple[int, int]] = frozenset()
    dates: frozenset[date] = frozenset()

    @classmethod
    def parse(cls, month_days: Iterable[str], dates: Iterable[date] = ()) -> ClosureDays:
        """Build from "MM-DD" strings such as "12-29" (Japanese offices close 29 Dec-3 Jan)."""
        yearly: set[tuple[int, int]] = set()
        for text in month_days:
            try:
                month, day = (int(part) for part in text.split("-"))
                date(2000, month, day)  # a leap year, so 02-29 is accepted
            except ValueError as exc:
                raise ScheduleError(
                    f'closure day {text!r}: write it as "MM-DD", e.g. "12-29"'
                ) from exc
            yearly.add((month, day))
        return cls(frozenset(yearly), frozenset(dates))

    def is_holiday(self, day: date) -> bool:
        """Return True on a closure day."""
        return (day.month, day.day) in self.yearly or day in self.dates


@dataclass(frozen=True, slots=True)
class AnyOf:
    """A calendar whose holidays are those of any of its parts."""

    parts: tuple[HolidayCalendar, ...]

    def is_holiday(self, day: date) -> bool:
        """Return True if any part calls `day` a holiday."""
        return any(part.is_holiday(day) for part in self.parts)


@dataclass(frozen=True, slots=True)
class TimeRange:
    """From `start` to `end` local time; `end=None` means midnight at the end of the day."""

    start: time
    end: time | None = None

    @property
    def overnight(self) -> bool:
        """True if the range runs past midnight."""
        return self.end is not None and self.end <= self.start

    @classmethod
    def parse(cls, text: str) -> TimeRange:
        """Parse "08:00-18:30"; "24:00" is the end of the day."""
        try:
            start_text, end_text = (part.strip() for part in text.split("-"))
            start = time.fromisoformat(start_text)
            end = None if end_text == "24:00" else time.fromisoformat(end_text)
        except ValueError as exc:
            raise ScheduleError(
                f'time range {text!r}: write it as "HH:MM-HH:MM", e.g. "08:00-18:30"'
            ) from exc
        return cls(start, end)


ALL_DAY = TimeRange(time(0), None)


@dataclass(frozen=True, slots=True)
class Window:
    """A time range on some days of the week (0 = Monday ... 6 = Sunday)."""

    days: frozenset[int]
    hours: TimeRange

    def __post_init__(self) -> None:
        if not self.days or not self.days <= EVERY_DAY:
            raise ScheduleError(f"window days {sorted(self.days)}: use 0 (Monday) to 6 (Sunday)")


@dataclass(frozen=True, slots=True)
class Schedule:
    """When a rule or a held-open door applies."""

    id: str
    windows: tuple[Window, ...] = ()
    on_holidays: tuple[TimeRange, ...] = ()

    @classmethod
    def always(cls, schedule_id: str = "always") -> Schedule:
        """Return a schedule that is open at every moment, holidays included."""
        return cls(schedule_id, (Window(EVERY_DAY, ALL_DAY),), (ALL_DAY,))

    def is_open(self, local: datetime, calendar: HolidayCalendar) -> bool:
        """Return True if the schedule admits the local wall-clock time `local`."""
        today, now = local.date(), local.time()
        yesterday = today - timedelta(days=1)
        if calendar.is_holiday(today):
            if any(_covers_today(hours, now) for hours in self.on_holidays):
                return True
        elif any(today.weekday() in w.days and _covers_today(w.hours, now) for w in self.windows):
            return True
        # The tail of an overnight range started yesterday belongs to yesterday's rules.
        if calendar.is_holiday(yesterday):
            return any(_covers_tail(hours, now) for hours in self.on_holidays)
        return any(
            yesterday.weekday() in w.days and _covers_tail(w.hours, now) for w in self.windows
        )


def _covers_today(hours: TimeRange, now: time) -> bool:
    if hours.end is None or hours.overnight:
        return now >= hours.start
    return hours.start <= now < hours.end


def _covers_tail(hours: TimeRange, now: time) -> bool:
    return hours.overnight and hours.end is not None and now < hours.end
