"""Weekly windows, overnight ranges, holidays and closure days, in local time."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest

from edge.calendar import site_calendar
from edge.core.policy import AccessPolicy, Rule
from edge.core.schedule import (
    EVERY_DAY,
    WEEKDAYS,
    ClosureDays,
    NoHolidays,
    Schedule,
    ScheduleError,
    TimeRange,
    Window,
)

OFFICE = Schedule("office", (Window(WEEKDAYS, TimeRange.parse("08:00-18:30")),))
NIGHT_SHIFT = Schedule("night", (Window(frozenset({4}), TimeRange.parse("22:00-06:00")),))
WEEKEND_DUTY = Schedule(
    "duty", (Window(WEEKDAYS, TimeRange.parse("07:00-20:00")),), (TimeRange.parse("09:00-17:00"),)
)


@pytest.mark.parametrize(
    ("schedule", "local", "expected"),
    [
        (OFFICE, datetime(2026, 12, 1, 8, 0), True),  # Tuesday, opening minute
        (OFFICE, datetime(2026, 12, 1, 7, 59, 59), False),
        (OFFICE, datetime(2026, 12, 1, 18, 29, 59), True),
        (OFFICE, datetime(2026, 12, 1, 18, 30), False),  # end is exclusive
        (OFFICE, datetime(2026, 12, 5, 10, 0), False),  # Saturday
        (NIGHT_SHIFT, datetime(2026, 12, 4, 23, 0), True),  # Friday night
        (NIGHT_SHIFT, datetime(2026, 12, 5, 5, 59), True),  # tail on Saturday morning
        (NIGHT_SHIFT, datetime(2026, 12, 5, 6, 0), False),
        (NIGHT_SHIFT, datetime(2026, 12, 5, 23, 0), False),  # Saturday night
        (NIGHT_SHIFT, datetime(2026, 12, 4, 5, 0), False),  # Thursday had no shift
        (Schedule.always(), datetime(2027, 1, 1, 0, 0), True),
        (Schedule.always(), datetime(2026, 12, 31, 23, 59, 59), True),
    ],
)
def test_windows(schedule: Schedule, local: datetime, expected: bool) -> None:
    assert schedule.is_open(local, NoHolidays()) is expected


def test_holidays_use_the_holiday_ranges() -> None:
    calendar = site_calendar()
    labour_day = datetime(2026, 11, 23, 10, 0)  # Monday, a public holiday
    assert OFFICE.is_open(labour_day, calendar) is False
    assert WEEKEND_DUTY.is_open(labour_day, calendar) is True
    assert WEEKEND_DUTY.is_open(labour_day.replace(hour=8), calendar) is False


def test_year_end_closure_and_substitute_holiday() -> None:
    calendar = site_calendar()
    assert calendar.is_holiday(date(2026, 12, 29))
    assert calendar.is_holiday(date(2027, 1, 3))
    assert not calendar.is_holiday(date(2027, 1, 4))
    # 2026-05-06: substitute holiday for Constitution Day falling on a Sunday.
    assert calendar.is_holiday(date(2026, 5, 6))
    assert not calendar.is_holiday(date(2026, 5, 7))


def test_overnight_tail_after_a_holiday_follows_the_holiday() -> None:
    closure = ClosureDays(dates=frozenset({date(2026, 12, 4)}))
    assert NIGHT_SHIFT.is_open(datetime(2026, 12, 5, 3, 0), closure) is False


@pytest.mark.parametrize("text", ["8-18", "08:00", "25:00-26:00", "08:00-18:00-19:00"])
def test_bad_time_range_says_how_to_write_it(text: str) -> None:
    with pytest.raises(ScheduleError, match="HH:MM-HH:MM"):
        TimeRange.parse(text)


def test_bad_closure_day_says_how_to_write_it() -> None:
    with pytest.raises(ScheduleError, match="MM-DD"):
        ClosureDays.parse(["12/29"])


def test_window_days_must_be_weekdays() -> None:
    with pytest.raises(ScheduleError, match="0 \\(Monday\\) to 6"):
        Window(frozenset({7}), TimeRange(time(0)))
    assert Window(EVERY_DAY, TimeRange(time(0))).days == EVERY_DAY


def test_policy_refuses_undefined_schedules() -> None:
    with pytest.raises(ScheduleError, match="undefined schedules \\['nights'\\]"):
        AccessPolicy(rules=(Rule("staff", frozenset({"gate"}), "nights"),))
