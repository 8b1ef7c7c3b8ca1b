"""The site's holiday calendar: Japanese public holidays plus the site's closure days."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import holidays

from edge.core.schedule import AnyOf, ClosureDays, HolidayCalendar

# Japanese government offices close from 29 December to 3 January.
YEAR_END_CLOSURE = ("12-29", "12-30", "12-31", "01-01", "01-02", "01-03")


class PublicHolidays:
    """A country's public holidays from the `holidays` package (substitute holidays included)."""

    def __init__(self, country: str = "JP") -> None:
        self.country = country
        self._days = holidays.country_holidays(country)

    def __repr__(self) -> str:
        return f"<PublicHolidays {self.country}>"

    def is_holiday(self, day: date) -> bool:
        """Return True on a public holiday."""
        return day in self._days

    def name(self, day: date) -> str | None:
        """Return the holiday's name, or None."""
        return self._days.get(day)


def site_calendar(
    closure_days: Iterable[str] = YEAR_END_CLOSURE,
    extra_dates: Iterable[date] = (),
    country: str | None = "JP",
) -> HolidayCalendar:
    """Return public holidays of `country` (None: none) and the site's closure days."""
    closures = ClosureDays.parse(closure_days, extra_dates)
    if country is None:
        return closures
    return AnyOf((PublicHolidays(country), closures))
