"""Build each [[calendars]] entry's booking adapter, importing its module only when used.

A calendar whose adapter cannot be built (a missing secret file, a module not installed)
becomes an `Unavailable` adapter: every read raises BookingError with the reason, so the
service logs it once, keeps running and shows its rooms' bookings as they last were.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from edge.errors import EdgeError
from rooms.bookings import Booking, BookingAdapter, BookingError
from rooms.config import (
    CaldavCalendar,
    CalendarSettings,
    GaroonCalendar,
    GraphCalendar,
    RoomSettings,
    ServiceConfig,
)

# kind: (module, the callable that opens one calendar's adapter)
BUILDERS: dict[str, tuple[str, str]] = {
    "caldav": ("rooms.caldav_adapter", "CaldavAdapter"),
    "graph": ("rooms.graph_calendar", "open_graph"),
    "garoon": ("rooms.garoon_calendar", "open_garoon"),
}


class Unavailable:
    """A calendar that could not be opened: every call says why."""

    def __init__(self, calendar: str, reason: str) -> None:
        self.calendar = calendar
        self.reason = reason

    def __repr__(self) -> str:
        return f"<Unavailable calendar {self.calendar}>"

    def _fail(self) -> BookingError:
        return BookingError(f"calendar {self.calendar} is not available: {self.reason}")

    def bookings(
        self, rooms: Sequence[RoomSettings], start: datetime, end: datetime
    ) -> dict[str, list[Booking]]:
        raise self._fail()

    def check_in(self, room: RoomSettings, booking: Booking, at: datetime) -> None:
        raise self._fail()

    def release(self, room: RoomSettings, booking: Booking, reason: str) -> None:
        raise self._fail()

    def book(self, room: RoomSettings, start: datetime, end: datetime, title: str) -> Booking:
        raise self._fail()

    def close(self) -> None:
        """Nothing to release."""


def build_adapter(settings: CalendarSettings, timezone: str) -> BookingAdapter:
    """Return the adapter for one calendar, or an `Unavailable` one saying why not."""
    module_name, name = BUILDERS[settings.kind]
    try:
        factory: Any = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as error:
        return Unavailable(settings.id, f"{module_name}.{name} cannot be loaded ({error})")
    try:
        if isinstance(settings, CaldavCalendar):
            return cast(BookingAdapter, factory(settings, timezone))
        if isinstance(settings, GaroonCalendar):
            return cast(BookingAdapter, factory(settings, timezone=timezone))
        if isinstance(settings, GraphCalendar):
            return cast(BookingAdapter, factory(settings))
    except (EdgeError, OSError, ValueError) as error:
        return Unavailable(settings.id, str(error))
    return Unavailable(settings.id, f"kind {settings.kind!r} has no adapter")


def build_adapters(config: ServiceConfig) -> dict[str, BookingAdapter]:
    """Return every calendar's adapter by its id."""
    return {c.id: build_adapter(c, config.timezone) for c in config.calendars}
