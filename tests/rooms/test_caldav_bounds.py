"""The CalDAV adapter against a real Radicale: moved bookings, bad zones, recurrence floods."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from rooms.bookings import Booking, BookingError
from rooms.caldav_adapter import CaldavAdapter
from rooms.config import RoomSettings
from tests.rooms.radicale_server import RadicaleServer, radicale  # noqa: F401 (the fixture)
from tests.rooms.test_caldav_adapter import DAY, by_uid, event, fetch, make_room, put


@pytest.fixture
def adapter(radicale: RadicaleServer) -> Iterator[CaldavAdapter]:  # noqa: F811
    with CaldavAdapter(radicale.calendar_settings(), "Asia/Tokyo") as adapter:
        yield adapter


def write(adapter: CaldavAdapter, room: RoomSettings, booking: Booking, doing: str) -> None:
    """Check the booking in, or release it."""
    if doing == "check-in":
        adapter.check_in(room, booking, booking.start)
    else:
        adapter.release(room, booking, "nobody came within 10 minutes")


@pytest.mark.parametrize("doing", ["check-in", "release"])
def test_a_booking_moved_since_it_was_read_is_not_written(
    radicale: RadicaleServer,  # noqa: F811
    adapter: CaldavAdapter,
    doing: str,
) -> None:
    room = make_room(radicale)
    put(radicale, room, "m1", event("m1", "DTSTART:20301202T010000Z", "DTEND:20301202T020000Z"))
    [booking] = adapter.bookings([room], DAY, DAY + timedelta(days=1))[room.zone]
    moved = event("m1", "DTSTART:20301202T060000Z", "DTEND:20301202T070000Z", "SEQUENCE:1")
    put(radicale, room, "m1", moved)  # the organiser moves it to the afternoon

    with pytest.raises(BookingError, match="the booking moved since it was read"):
        write(adapter, room, booking, doing)

    text = fetch(radicale, room, "m1")
    assert "STATUS:CANCELLED" not in text
    assert "X-EDGE-CHECKED-IN" not in text
    [read] = adapter.bookings([room], DAY, DAY + timedelta(days=1))[room.zone]
    assert (read.start, read.released) == (datetime(2030, 12, 2, 6, tzinfo=UTC), False)


def test_a_moved_occurrence_of_a_recurring_booking_is_not_released(
    radicale: RadicaleServer,  # noqa: F811
    adapter: CaldavAdapter,
) -> None:
    room = make_room(radicale)
    rule = ("DTSTART:20301202T010000Z", "DTEND:20301202T020000Z", "RRULE:FREQ=DAILY;COUNT=3")
    put(radicale, room, "daily", event("daily", *rule))
    [first] = adapter.bookings([room], DAY, DAY + timedelta(hours=12))[room.zone]
    later = ("DTSTART:20301202T050000Z", "DTEND:20301202T060000Z", "RRULE:FREQ=DAILY;COUNT=3")
    put(radicale, room, "daily", event("daily", *later, "SEQUENCE:1"))  # the series moved

    with pytest.raises(BookingError, match="moved since it was read"):
        adapter.release(room, first, "nobody came")

    assert "STATUS:CANCELLED" not in fetch(radicale, room, "daily")


def test_a_zone_name_that_is_a_directory_skips_that_event_and_no_room_is_blinded(
    radicale: RadicaleServer,  # noqa: F811
    adapter: CaldavAdapter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    first, second = make_room(radicale, "meeting-2f-1"), make_room(radicale, "meeting-2f-2")
    hostile = event(
        "asia",
        "DTSTART;TZID=Asia:20301202T100000",
        "DTEND;TZID=Asia:20301202T110000",
        "SUMMARY:Secret merger",
    )
    put(radicale, first, "asia", hostile)
    put(radicale, first, "ok", event("ok", "DTSTART:20301202T030000Z", "DTEND:20301202T040000Z"))
    put(radicale, second, "b", event("b", "DTSTART:20301202T010000Z", "DTEND:20301202T020000Z"))

    found = adapter.bookings([first, second], DAY, DAY + timedelta(days=1))

    assert [b.uid for b in found[second.zone]] == ["b"]  # the other room is read
    assert [b.uid for b in found[first.zone]] == ["ok"]  # only the hostile event is skipped
    assert "event asia.ics skipped: IsADirectoryError" in caplog.text
    assert "Secret merger" not in caplog.text


def test_a_recurrence_flood_is_skipped_quickly_and_the_real_booking_kept(
    radicale: RadicaleServer,  # noqa: F811
    adapter: CaldavAdapter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    room = make_room(radicale)
    flood = ("DTSTART:20301202T000000Z", "DTEND:20301202T000001Z", "RRULE:FREQ=SECONDLY;INTERVAL=5")
    put(radicale, room, "sec", event("sec", *flood))
    busy = ("DTSTART:20301202T000000Z", "DTEND:20301202T000100Z", "RRULE:FREQ=MINUTELY")
    put(radicale, room, "min", event("min", *busy))
    put(radicale, room, "real", event("real", "DTSTART:20301202T010000Z", "DTEND:20301202T020000Z"))
    start = datetime(2030, 12, 2, tzinfo=UTC)

    began = time.monotonic()
    found = adapter.bookings([room], start, start + timedelta(hours=36))[room.zone]
    took = time.monotonic() - began

    assert [b.uid for b in found] == ["real"]
    assert took < 5.0, f"{took:.1f} s"  # a bound on runaway expansion, not a speed figure
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert any("SECONDLY" in m for m in skipped)
    assert any("more than 300 occurrences" in m for m in skipped)


def test_a_weekly_meeting_in_a_busy_calendar_is_still_read(
    radicale: RadicaleServer,  # noqa: F811
    adapter: CaldavAdapter,
) -> None:
    room = make_room(radicale)
    weekly = ("DTSTART:20301125T010000Z", "DTEND:20301125T020000Z", "RRULE:FREQ=WEEKLY")
    put(radicale, room, "weekly", event("weekly", *weekly))
    hourly = ("DTSTART:20301202T000000Z", "DTEND:20301202T003000Z", "RRULE:FREQ=HOURLY;COUNT=10")
    put(radicale, room, "hourly", event("hourly", *hourly))

    found = by_uid(adapter.bookings([room], DAY, DAY + timedelta(days=1))[room.zone])

    assert "weekly#20301202T010000Z" in found
    assert sum(uid.startswith("hourly#") for uid in found) == 10
