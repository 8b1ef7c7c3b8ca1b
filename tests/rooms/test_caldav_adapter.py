"""The CalDAV adapter against a real Radicale: reading, change detection, marks, ad-hoc bookings.

It runs past 500 lines because every case shares one Radicale session and its calendar
helpers; splitting it would start a second server or move the helpers into a fixture module
for one reader.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from caldav.davclient import DAVClient

from rooms.bookings import Booking, BookingError
from rooms.caldav_adapter import CaldavAdapter
from rooms.caldav_client import connect, resource_url
from rooms.caldav_setup import ensure_calendars, make_booking
from rooms.config import RoomSettings
from simulator.broker import free_port
from tests.rooms.radicale_server import RadicaleServer, radicale  # noqa: F401 (the fixture)

TOKYO = ZoneInfo("Asia/Tokyo")
DAY = datetime(2030, 12, 2, tzinfo=TOKYO)  # a far-future Monday: no clock in these tests


def make_room(server: RadicaleServer, zone: str = "meeting-2f-1") -> RoomSettings:
    """Return a bookable room with a calendar of its own on the server."""
    room = RoomSettings(
        zone=zone,
        name=f"Meeting {zone}",
        kind="meeting-room",
        floor=2,
        device="node-2f",
        calendar="radicale",
        resource=server.unique_path(zone),
    )
    assert ensure_calendars(server.calendar_settings(), [room]) == [zone]
    return room


def put(server: RadicaleServer, room: RoomSettings, uid: str, body: str) -> None:
    """PUT one event as an organiser's calendar client would (raw iCalendar)."""
    assert room.resource is not None
    text = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//test//EN\r\n"
    text += body.strip().replace("\n", "\r\n") + "\r\nEND:VCALENDAR\r\n"
    response = httpx.put(
        resource_url(server.calendar_settings(), room.resource) + f"{uid}.ics",
        content=text.encode(),
        headers={"Content-Type": "text/calendar"},
        auth=(server.username, server.password),
    )
    assert response.status_code in (201, 204), response.text


def event(uid: str, start: str, end: str, *extra: str) -> str:
    lines = ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20301101T000000Z", start, end, *extra]
    return "\n".join([*lines, "END:VEVENT"])


def fetch(server: RadicaleServer, room: RoomSettings, uid: str) -> str:
    assert room.resource is not None
    url = resource_url(server.calendar_settings(), room.resource) + f"{uid}.ics"
    response = httpx.get(url, auth=(server.username, server.password))
    assert response.status_code == 200
    return response.text.replace("\r\n ", "")  # unfold


def requests_to(server: RadicaleServer, room: RoomSettings, method: str) -> int:
    """Count the requests Radicale logged for the room's calendar (its path is unique)."""
    assert room.resource is not None
    pattern = re.compile(rf"{method} request for '{re.escape(room.resource)}")
    return len(pattern.findall(server.log_file.read_text(encoding="utf-8")))


@pytest.fixture
def adapter(radicale: RadicaleServer) -> Iterator[CaldavAdapter]:  # noqa: F811
    with CaldavAdapter(radicale.calendar_settings(), "Asia/Tokyo") as adapter:
        yield adapter


def by_uid(found: list[Booking]) -> dict[str, Booking]:
    return {b.uid: b for b in found}


def test_reads_single_recurring_all_day_cancelled_and_floating_events(
    radicale: RadicaleServer,  # noqa: F811
    adapter: CaldavAdapter,
) -> None:
    room = make_room(radicale)
    put(
        radicale,
        room,
        "single",
        event(
            "single",
            "DTSTART:20301202T010000Z",
            "DTEND:20301202T020000Z",
            "SUMMARY:Budget review",
            "ORGANIZER;CN=Sato:mailto:sato@city.example",
            "ATTENDEE:mailto:suzuki@city.example",
            "ATTENDEE;CUTYPE=ROOM;PARTSTAT=ACCEPTED:mailto:room-2f-1@city.example",
        ),
    )
    put(
        radicale,
        room,
        "daily",
        event(
            "daily",
            "DTSTART;TZID=Asia/Tokyo:20301202T140000",
            "DTEND;TZID=Asia/Tokyo:20301202T143000",
            "RRULE:FREQ=DAILY;COUNT=3",
        ),
    )
    put(radicale, room, "all-day", event("all-day", "DTSTART;VALUE=DATE:20301202", ""))
    put(
        radicale,
        room,
        "cancelled",
        event(
            "cancelled", "DTSTART:20301202T030000Z", "DTEND:20301202T040000Z", "STATUS:CANCELLED"
        ),
    )
    put(
        radicale,
        room,
        "free",
        event("free", "DTSTART:20301202T050000Z", "DTEND:20301202T051500Z", "TRANSP:TRANSPARENT"),
    )
    put(
        radicale,
        room,
        "floating",
        event("floating", "DTSTART:20301202T160000", "DTEND:20301202T170000"),
    )

    found = adapter.bookings([room], DAY, DAY + timedelta(days=3))

    bookings = by_uid(found[room.zone])
    assert set(bookings) == {
        "single",
        "cancelled",
        "free",
        "floating",
        "daily#20301202T050000Z",
        "daily#20301203T050000Z",
        "daily#20301204T050000Z",
    }  # the all-day note is no booking
    single = bookings["single"]
    assert single.start == datetime(2030, 12, 2, 1, tzinfo=UTC)
    assert (single.organiser, single.attendees, single.title) == (
        "sato@city.example",
        ("suzuki@city.example",),
        "Budget review",
    )
    assert not single.released
    assert single.checked_in is None
    assert not single.ad_hoc
    assert bookings["cancelled"].released
    assert bookings["free"].released
    assert bookings["floating"].start == datetime(2030, 12, 2, 16, tzinfo=TOKYO)
    assert bookings["daily#20301203T050000Z"].end == datetime(2030, 12, 3, 14, 30, tzinfo=TOKYO)
    assert all(b.calendar == "radicale" and b.room == room.zone for b in bookings.values())


def test_an_unchanged_calendar_is_answered_from_the_cache(
    radicale: RadicaleServer,  # noqa: F811
    adapter: CaldavAdapter,
) -> None:
    room, other = make_room(radicale), make_room(radicale, "focus-2f-1")
    put(radicale, room, "one", event("one", "DTSTART:20301202T010000Z", "DTEND:20301202T020000Z"))
    window = (DAY, DAY + timedelta(hours=12))

    first = adapter.bookings([room, other], *window)
    second = adapter.bookings([room, other], window[0] + timedelta(minutes=1), window[1])

    assert [b.uid for b in first[room.zone]] == ["one"] == [b.uid for b in second[room.zone]]
    assert requests_to(radicale, room, "REPORT") == 1  # the second poll asked no REPORT
    assert requests_to(radicale, other, "REPORT") == 1
    put(radicale, room, "two", event("two", "DTSTART:20301202T020000Z", "DTEND:20301202T030000Z"))
    third = adapter.bookings([room, other], *window)
    assert sorted(b.uid for b in third[room.zone]) == ["one", "two"]
    assert requests_to(radicale, room, "REPORT") == 2  # changed: read again
    assert requests_to(radicale, other, "REPORT") == 1  # unchanged: still the cache


def test_a_check_in_is_written_into_the_event_and_read_back(
    radicale: RadicaleServer,  # noqa: F811
    adapter: CaldavAdapter,
) -> None:
    room = make_room(radicale)
    put(radicale, room, "meet", event("meet", "DTSTART:20301202T010000Z", "DTEND:20301202T020000Z"))
    [booking] = adapter.bookings([room], DAY, DAY + timedelta(days=1))[room.zone]
    at = datetime(2030, 12, 2, 1, 3, 7, tzinfo=UTC)

    adapter.check_in(room, booking, at)
    adapter.check_in(room, booking, at + timedelta(minutes=5))  # the first mark stays

    assert "X-EDGE-CHECKED-IN:20301202T010307Z" in fetch(radicale, room, "meet")
    with CaldavAdapter(radicale.calendar_settings(), TOKYO) as fresh:
        [read] = fresh.bookings([room], DAY, DAY + timedelta(days=1))[room.zone]
    assert read.checked_in == at
    assert not read.released


def test_releasing_cancels_the_event_with_the_reason_and_keeps_it(
    radicale: RadicaleServer,  # noqa: F811
    adapter: CaldavAdapter,
) -> None:
    room = make_room(radicale)
    put(
        radicale,
        room,
        "meet",
        event("meet", "DTSTART:20301202T010000Z", "DTEND:20301202T020000Z", "DESCRIPTION:Agenda"),
    )
    [booking] = adapter.bookings([room], DAY, DAY + timedelta(days=1))[room.zone]

    adapter.release(room, booking, "nobody came within 10 minutes")

    text = fetch(radicale, room, "meet")
    assert "STATUS:CANCELLED" in text
    assert "COMMENT:Released by the building: nobody came within 10 minutes" in text
    assert "DESCRIPTION:Agenda\\n\\nReleased by the building: nobody came" in text
    assert "SEQUENCE:1" in text
    [read] = adapter.bookings([room], DAY, DAY + timedelta(days=1))[room.zone]
    assert read.released
    assert read.uid == "meet"


def test_releasing_one_occurrence_leaves_the_others_booked(
    radicale: RadicaleServer,  # noqa: F811
    adapter: CaldavAdapter,
) -> None:
    room = make_room(radicale)
    put(
        radicale,
        room,
        "daily",
        event(
            "daily",
            "DTSTART;TZID=Asia/Tokyo:20301202T100000",
            "DTEND;TZID=Asia/Tokyo:20301202T110000",
            "RRULE:FREQ=DAILY;COUNT=3",
            "SUMMARY:Stand-up",
            "ORGANIZER:mailto:sato@city.example",
        ),
    )
    window = (DAY, DAY + timedelta(days=3))
    second = by_uid(adapter.bookings([room], *window)[room.zone])["daily#20301203T010000Z"]

    adapter.release(room, second, "nobody came")
    adapter.check_in(room, second, datetime(2030, 12, 3, 1, 2, tzinfo=UTC))

    after = by_uid(adapter.bookings([room], *window)[room.zone])
    assert [uid for uid, b in sorted(after.items()) if b.released] == ["daily#20301203T010000Z"]
    assert len(after) == 3
    moved = after["daily#20301203T010000Z"]
    assert (moved.start, moved.title, moved.organiser) == (
        datetime(2030, 12, 3, 10, tzinfo=TOKYO),
        "Stand-up",
        "sato@city.example",
    )
    assert moved.checked_in == datetime(2030, 12, 3, 1, 2, tzinfo=UTC)
    assert after["daily#20301204T010000Z"].checked_in is None
    text = fetch(radicale, room, "daily")
    assert "RECURRENCE-ID;TZID=Asia/Tokyo:20301203T100000" in text
    assert "RRULE:FREQ=DAILY;COUNT=3" in text
    assert "EXDATE" not in text


def test_an_ad_hoc_booking_is_made_and_never_double_books(
    radicale: RadicaleServer,  # noqa: F811
    adapter: CaldavAdapter,
) -> None:
    room = make_room(radicale)
    put(radicale, room, "meet", event("meet", "DTSTART:20301202T010000Z", "DTEND:20301202T020000Z"))
    put(
        radicale,
        room,
        "gone",
        event("gone", "DTSTART:20301202T030000Z", "DTEND:20301202T040000Z", "STATUS:CANCELLED"),
    )
    start = datetime(2030, 12, 2, 2, tzinfo=UTC)

    made = adapter.book(room, start, start + timedelta(minutes=30), "In use")
    with pytest.raises(BookingError, match=r"room meeting-2f-1: already booked 2030-12-02T01:00"):
        adapter.book(room, start - timedelta(minutes=30), start, "In use")
    with pytest.raises(BookingError, match="already booked"):
        adapter.book(room, start + timedelta(minutes=20), start + timedelta(hours=1), "In use")
    released_slot = adapter.book(room, start + timedelta(hours=1), start + timedelta(hours=2), "x")

    assert made.ad_hoc
    assert made.start == start
    assert made.organiser == radicale.username
    read = by_uid(adapter.bookings([room], DAY, DAY + timedelta(days=1))[room.zone])
    assert read[made.uid].ad_hoc
    assert read[made.uid].title == "In use"
    assert read[released_slot.uid].start == start + timedelta(hours=1)
    assert "X-EDGE-AD-HOC:TRUE" in fetch(radicale, room, made.uid)


def test_a_wrong_password_names_the_account_and_the_fix(
    radicale: RadicaleServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    room = make_room(radicale)
    wrong = tmp_path / "password"
    wrong.write_text("not-the-password-4711\n")
    settings = radicale.calendar_settings(password_file=wrong)
    with CaldavAdapter(settings, TOKYO) as adapter, pytest.raises(BookingError) as refused:
        adapter.bookings([room], DAY, DAY + timedelta(hours=1))
    message = str(refused.value)
    assert message.startswith(f"calendar radicale, room {room.zone}: the server refused the ")
    assert f"check the password in {wrong}" in message
    assert "4711" not in message
    assert "Traceback" not in message


def test_a_calendar_the_account_may_not_use_names_the_path(
    radicale: RadicaleServer,  # noqa: F811
    adapter: CaldavAdapter,
) -> None:
    room = make_room(radicale)
    forbidden = room.model_copy(update={"zone": "booth-9", "resource": "/staff/secret/"})
    assert list(adapter.bookings([room, forbidden], DAY, DAY + timedelta(hours=1))) == [room.zone]
    with pytest.raises(BookingError) as refused:
        adapter.bookings([forbidden], DAY, DAY + timedelta(hours=1))
    assert str(refused.value).startswith("calendar radicale, room booth-9: the server refused")
    assert "(HTTP 403)" in str(refused.value)
    assert "may read and write /staff/secret/" in str(refused.value)


def test_a_server_that_is_down_is_a_booking_error(tmp_path: Path) -> None:
    password = tmp_path / "password"
    password.write_text("secret-1234\n")
    down = RadicaleServer(f"http://127.0.0.1:{free_port()}/", "svc", "", password, tmp_path)
    room = RoomSettings(
        zone="booth-1",
        name="Booth",
        kind="phone-booth",
        floor=1,
        device="n",
        calendar="radicale",
        resource="/rooms/booth-1/",
    )
    with CaldavAdapter(down.calendar_settings(), TOKYO) as adapter:
        with pytest.raises(BookingError, match=r"room booth-1: cannot reach http://127.0.0.1:\d+/"):
            adapter.bookings([room], DAY, DAY + timedelta(hours=1))
        with pytest.raises(BookingError, match="check the server runs"):
            adapter.book(room, DAY, DAY + timedelta(hours=1), "x")


def test_a_missing_calendar_names_its_path_and_the_fix(
    radicale: RadicaleServer,  # noqa: F811
    adapter: CaldavAdapter,
) -> None:
    room = make_room(radicale)
    missing = room.model_copy(update={"zone": "booth-9", "resource": radicale.unique_path("x")})
    assert list(adapter.bookings([room, missing], DAY, DAY + timedelta(hours=1))) == [room.zone]
    with pytest.raises(BookingError) as failed:
        adapter.bookings([missing], DAY, DAY + timedelta(hours=1))
    assert str(failed.value).startswith(
        f"calendar radicale, room booth-9: no calendar at {missing.resource}"
    )
    assert "fix the room's `resource`" in str(failed.value)


def test_hostile_or_broken_events_are_skipped_and_the_rest_read(
    radicale: RadicaleServer,  # noqa: F811
    adapter: CaldavAdapter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    room = make_room(radicale)
    crowd = [f"ATTENDEE:mailto:p{i}@city.example" for i in range(501)]
    put(
        radicale,
        room,
        "crowd",
        event("crowd", "DTSTART:20301202T010000Z", "DTEND:20301202T020000Z", *crowd),
    )
    long_title = "SUMMARY:" + "x" * 5000
    put(
        radicale,
        room,
        "long",
        event("long", "DTSTART:20301202T030000Z", "DTEND:20301202T040000Z", long_title),
    )
    put(radicale, room, "ok", event("ok", "DTSTART:20301202T050000Z", "DTEND:20301202T060000Z"))
    put(
        radicale,
        room,
        "inside-out",
        event("inside-out", "DTSTART:20301202T080000Z", "DTEND:20301202T070000Z"),
    )
    huge = "DESCRIPTION:" + "y" * 300_000  # over the 256 KiB one event may take
    put(
        radicale,
        room,
        "huge",
        event("huge", "DTSTART:20301202T090000Z", "DTEND:20301202T100000Z", huge),
    )
    put(
        radicale,
        room,
        "junk-mark",
        event(
            "junk-mark",
            "DTSTART:20301202T110000Z",
            "DTEND:20301202T120000Z",
            "X-EDGE-CHECKED-IN:soon",
            "ORGANIZER:mailto:" + "o" * 400 + "@city.example",
        ),
    )

    found = by_uid(adapter.bookings([room], DAY, DAY + timedelta(days=1))[room.zone])

    assert set(found) == {"long", "ok", "junk-mark"}
    assert len(found["long"].title) == 200
    assert found["junk-mark"].checked_in is None
    assert len(found["junk-mark"].organiser) == 200
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 3
    assert any("501 attendees (more than 500)" in m for m in skipped)
    assert any("it ends before it starts" in m for m in skipped)
    assert not any("city.example" in r.getMessage() for r in caplog.records)


def test_a_concurrent_edit_by_the_organiser_is_kept_and_the_mark_retried(
    radicale: RadicaleServer,  # noqa: F811
) -> None:
    room = make_room(radicale)
    put(
        radicale,
        room,
        "meet",
        event("meet", "DTSTART:20301202T010000Z", "DTEND:20301202T020000Z", "SUMMARY:Draft"),
    )
    puts: list[str] = []

    class OrganiserEditsFirst(DAVClient):
        """A client whose first PUT comes just after the organiser saved an edit."""

        def put(self, url: str, body: str, headers: object = None) -> object:  # type: ignore[override]
            puts.append(str(url))
            if len(puts) == 1:
                put(
                    radicale,
                    room,
                    "meet",
                    event(
                        "meet",
                        "DTSTART:20301202T010000Z",
                        "DTEND:20301202T020000Z",
                        "SUMMARY:Final",
                    ),
                )
            return super().put(url, body, headers)  # type: ignore[arg-type]

    settings = radicale.calendar_settings()
    client = OrganiserEditsFirst(
        settings.url, username=radicale.username, password=radicale.password, auth_type="basic"
    )
    with CaldavAdapter(settings, TOKYO, client=client) as adapter:
        [booking] = adapter.bookings([room], DAY, DAY + timedelta(days=1))[room.zone]
        adapter.check_in(room, booking, datetime(2030, 12, 2, 1, 1, tzinfo=UTC))

    assert len(puts) == 2  # refused once (If-Match), then written on the organiser's version
    text = fetch(radicale, room, "meet")
    assert "SUMMARY:Final" in text
    assert "X-EDGE-CHECKED-IN:20301202T010100Z" in text


def test_calendars_are_created_once_and_a_person_can_book(radicale: RadicaleServer) -> None:  # noqa: F811
    settings = radicale.calendar_settings()
    top = f"/rooms/floor-{uuid.uuid4().hex[:8]}/meeting-3f-1/"  # its parent does not exist yet
    room = RoomSettings(
        zone="meeting-3f-1",
        name="Meeting 3F-1",
        kind="meeting-room",
        floor=3,
        device="n",
        calendar="radicale",
        resource=top,
    )
    assert ensure_calendars(settings, [room]) == ["meeting-3f-1"]
    assert ensure_calendars(settings, [room]) == []

    start = datetime(2030, 12, 2, 9, tzinfo=TOKYO)
    make_booking(
        settings,
        top,
        "sim-1",
        start,
        start + timedelta(hours=1),
        "sato@city.example",
        ["ito@city.example"],
        "Planning",
    )
    client = connect(settings)
    make_booking(
        settings,
        top,
        "sim-2",
        start + timedelta(hours=2),
        start + timedelta(hours=3),
        "ito@city.example",
        [],
        "1:1",
        client=client,
    )
    client.close()

    with CaldavAdapter(settings, TOKYO) as adapter:
        found = by_uid(adapter.bookings([room], DAY, DAY + timedelta(days=1))[room.zone])
    assert (found["sim-1"].organiser, found["sim-1"].attendees, found["sim-1"].title) == (
        "sato@city.example",
        ("ito@city.example",),
        "Planning",
    )
    assert found["sim-2"].start == start + timedelta(hours=2)
    assert not found["sim-2"].ad_hoc


def test_close_is_idempotent_and_use_after_close_is_refused(radicale: RadicaleServer) -> None:  # noqa: F811
    adapter = CaldavAdapter(radicale.calendar_settings(), TOKYO)
    adapter.close()
    adapter.close()
    with pytest.raises(BookingError, match="calendar radicale: the adapter is closed"):
        adapter.bookings([], DAY, DAY + timedelta(hours=1))
