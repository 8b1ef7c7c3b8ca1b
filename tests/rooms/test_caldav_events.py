"""What the CalDAV adapter makes of events a hostile server could send, and its settings' checks."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from rooms.bookings import BookingError
from rooms.caldav_adapter import CaldavAdapter
from rooms.caldav_client import resource_url
from rooms.caldav_events import (
    EventKey,
    EventProblem,
    booking_from,
    events,
    instance,
    mark_released,
)
from rooms.config import CaldavCalendar

TOKYO = ZoneInfo("Asia/Tokyo")


def parse(*lines: str) -> Calendar:
    body = "\r\n".join(
        ["BEGIN:VEVENT", "UID:u-1", "DTSTAMP:20301101T000000Z", *lines, "END:VEVENT"]
    )
    return Calendar.from_ical(
        f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:t\r\n{body}\r\nEND:VCALENDAR\r\n"
    )


def settings(tmp_path: Path, url: str = "https://cal.example.jp/dav/") -> CaldavCalendar:
    return CaldavCalendar(
        kind="caldav", id="cal", url=url, username="svc", password_file=tmp_path / "password"
    )


def test_a_broken_start_is_a_problem_named_without_personal_data() -> None:
    [event] = events(parse("DTSTART:2030120XT100000", "DTEND:20301202T110000", "SUMMARY:Secret"))
    with pytest.raises(EventProblem, match=r"its start or end cannot be read") as problem:
        booking_from(event, "cal", "room-1", TOKYO)
    assert "Secret" not in str(problem.value)


def test_junk_in_the_check_in_mark_is_no_check_in() -> None:
    [event] = events(
        parse("DTSTART:20301202T010000Z", "DTEND:20301202T020000Z", "X-EDGE-CHECKED-IN:yesterday")
    )
    booking = booking_from(event, "cal", "room-1", TOKYO)
    assert booking is not None
    assert booking.checked_in is None


def test_an_event_without_an_end_lasts_no_time_and_text_is_one_short_line() -> None:
    [event] = events(parse("DTSTART:20301202T010000Z", "SUMMARY:a\\nb" + "c" * 300))
    booking = booking_from(event, "cal", "room-1", TOKYO)
    assert booking is not None
    assert booking.start == booking.end == datetime(2030, 12, 2, 1, tzinfo=UTC)
    assert booking.title == "a b" + "c" * 197


def test_an_occurrence_uid_splits_back_into_event_and_recurrence() -> None:
    key = EventKey("abc#def@host", datetime(2030, 12, 3, 10, tzinfo=TOKYO))
    assert key.booking_uid() == "abc#def@host#20301203T010000Z"
    assert EventKey.of(key.booking_uid()) == EventKey(
        "abc#def@host", datetime(2030, 12, 3, 1, tzinfo=UTC)
    )
    assert EventKey.of("plain@host") == EventKey("plain@host", None)


def test_a_resource_on_another_server_is_refused(tmp_path: Path) -> None:
    ours = settings(tmp_path)
    assert resource_url(ours, "/rooms/m-1") == "https://cal.example.jp/rooms/m-1/"
    assert resource_url(ours, "rooms/m-1/") == "https://cal.example.jp/dav/rooms/m-1/"
    with pytest.raises(BookingError, match=r"'https://evil\.example/rooms/' is on another"):
        resource_url(ours, "https://evil.example/rooms/")
    with pytest.raises(BookingError, match="on another server"):
        resource_url(ours, "//evil.example/rooms/")


def test_a_missing_or_empty_password_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(BookingError, match=r"calendar cal: cannot read password_file .*password"):
        CaldavAdapter(settings(tmp_path), TOKYO)
    (tmp_path / "password").write_text("\n")
    with pytest.raises(BookingError, match=r"password_file .* is empty"):
        CaldavAdapter(settings(tmp_path), TOKYO)


def test_a_recurring_event_named_without_its_occurrence_marks_only_the_first() -> None:
    whole = parse(
        "DTSTART;TZID=Asia/Tokyo:20301202T100000",
        "DTEND;TZID=Asia/Tokyo:20301202T110000",
        "RRULE:FREQ=DAILY;COUNT=3",
    )
    marked = instance(whole, EventKey.of("u-1"), TOKYO)
    assert mark_released(marked, "nobody came")
    master, override = events(whole)
    assert master.get("STATUS") is None
    assert "RRULE" in master
    assert override["RECURRENCE-ID"].dt == datetime(2030, 12, 2, 10, tzinfo=TOKYO)
    assert str(override["STATUS"]) == "CANCELLED"
    assert "RRULE" not in override


def test_a_password_written_into_the_url_is_never_shown(tmp_path: Path) -> None:
    (tmp_path / "password").write_text("pw\n")
    leaky = settings(tmp_path, "https://svc:hunter2@cal.example.jp/")
    with pytest.raises(BookingError) as refused:
        resource_url(leaky, "https://other.example/rooms/")
    assert "hunter2" not in str(refused.value)
    with CaldavAdapter(leaky, TOKYO) as adapter:
        assert "hunter2" not in repr(adapter)


def test_a_uid_that_cannot_be_named_back_is_a_problem() -> None:
    whole = parse("DTSTART:20301202T010000Z")
    [event] = events(whole)
    event["UID"] = "x" * 1001
    with pytest.raises(EventProblem, match="its UID is empty, longer than 1000"):
        booking_from(event, "cal", "room-1", TOKYO)
