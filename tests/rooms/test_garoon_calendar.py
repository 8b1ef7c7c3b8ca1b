"""The Garoon adapter against a stand-in that checks each request's documented shape."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from rooms.bookings import Booking, BookingError
from rooms.config import GaroonCalendar, RoomSettings
from rooms.garoon_calendar import MAX_NOTES, GaroonBookings, api_root, open_garoon
from rooms.garoon_events import AD_HOC
from rooms.rest import READ_WAIT_S
from tests.rooms.garoon_standin import GaroonStandin
from tests.rooms.standin_server import Reply

LOGIN = "rooms-service"
PASSWORD = "pa55:word-of-the-service"
TOKYO = ZoneInfo("Asia/Tokyo")
DAY = datetime(2031, 6, 2, tzinfo=TOKYO)  # far from the suite's own clock


def room(zone: str, facility: str) -> RoomSettings:
    return RoomSettings(
        zone=zone, name=f"Room {facility}", kind="meeting-room", floor=3, device="sensor-3f",
        calendar="garoon", resource=facility,
    )  # fmt: skip


ROOM_A, ROOM_B = room("meeting-3f-1", "11"), room("meeting-3f-2", "12")


def at(hour: int, minute: int = 0) -> datetime:
    return DAY.replace(hour=hour, minute=minute)


@pytest.fixture
def standin() -> Iterator[GaroonStandin]:
    server = GaroonStandin(login=LOGIN, password=PASSWORD)
    server.add_facility("11", "Room 3F-1")
    server.add_facility("12", "Room 3F-2")
    yield server
    server.close()
    assert not server.server.problems, "requests off the documented shape:\n" + "\n".join(
        server.server.problems
    )


def settings(standin: GaroonStandin, password_file: Path) -> GaroonCalendar:
    return GaroonCalendar(
        kind="garoon", id="garoon", base_url=standin.base_url, username=LOGIN,
        password_file=password_file,
    )  # fmt: skip


class Sleeper:
    """A fake sleep: records each wait instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleeper() -> Sleeper:
    return Sleeper()


@pytest.fixture
def adapter(standin: GaroonStandin, tmp_path: Path, sleeper: Sleeper) -> Iterator[GaroonBookings]:
    bookings = GaroonBookings(
        settings(standin, tmp_path / "pw"), PASSWORD, httpx.Client(timeout=5), sleep=sleeper
    )
    yield bookings
    bookings.close()


def test_reads_each_facilitys_events_in_the_window(
    standin: GaroonStandin, adapter: GaroonBookings
) -> None:
    both = standin.add_event(
        ("11", "12"), at(10), at(11), subject="予算会議", attendees=("sato", "suzuki")
    )
    rejected = standin.add_event(("11",), at(13), at(14), rejected=("11",))
    standin.add_event(("11",), at(15), at(16), event_type="TEMPORARY")  # candidates only
    standin.add_event(("11",), at(20), at(21))  # outside the window

    found = adapter.bookings([ROOM_A, ROOM_B], at(9), at(18))

    assert [b.uid for b in found["meeting-3f-1"]] == [both, rejected]
    booking = found["meeting-3f-1"][0]
    assert (booking.start, booking.end) == (at(10), at(11))
    assert booking.start.utcoffset() is not None
    assert booking.organiser == "sato-noboru"
    assert booking.attendees == ("sato", "suzuki")
    assert booking.title == "予算会議"
    assert (booking.released, booking.checked_in, booking.ad_hoc) == (False, None, False)
    assert found["meeting-3f-1"][1].released  # its approver refused the room
    assert [b.uid for b in found["meeting-3f-2"]] == [both]
    [query] = [r.query for r in standin.calls("GET") if r.query["target"] == ["11"]]
    assert query["targetType"] == ["facility"]
    assert query["rangeStart"] == ["2031-06-02T09:00:00+09:00"]


def test_pages_by_offset_until_has_next_is_false(
    standin: GaroonStandin, adapter: GaroonBookings
) -> None:
    standin.page_limit = 2
    uids = [standin.add_event(("11",), at(h), at(h, 30)) for h in range(9, 14)]

    found = adapter.bookings([ROOM_A], at(8), at(18))

    assert [b.uid for b in found["meeting-3f-1"]] == uids
    offsets = [r.query["offset"][0] for r in standin.calls("GET")]
    assert offsets == ["0", "2", "4"]


def test_check_in_is_noted_and_read_back(standin: GaroonStandin, adapter: GaroonBookings) -> None:
    uid = standin.add_event(("11",), at(10), at(11), notes="議題:\n1. 予算")
    [booking] = adapter.bookings([ROOM_A], at(9), at(18))["meeting-3f-1"]

    adapter.check_in(ROOM_A, booking, at(10, 2))

    assert standin.event(uid)["notes"] == (
        "議題:\n1. 予算\n[rooms] checked in at 2031-06-02T10:02:00+09:00"
    )
    [again] = adapter.bookings([ROOM_A], at(9), at(18))["meeting-3f-1"]
    assert again.checked_in == at(10, 2)
    assert len(standin.event(uid)["facilities"]) == 1  # nothing else changed


def test_release_takes_the_facility_off_with_the_reason(
    standin: GaroonStandin, adapter: GaroonBookings
) -> None:
    uid = standin.add_event(("11", "12"), at(10), at(11))
    [booking] = adapter.bookings([ROOM_A], at(9), at(18))["meeting-3f-1"]

    adapter.release(ROOM_A, booking, "Nobody arrived within 10 minutes.\nThe room is free again.")

    event = standin.event(uid)
    assert [f["id"] for f in event["facilities"]] == ["12"]
    assert event["notes"].endswith(
        "[rooms] released Room 11: Nobody arrived within 10 minutes. The room is free again."
    )
    found = adapter.bookings([ROOM_A, ROOM_B], at(9), at(18))
    [released] = found["meeting-3f-1"]
    assert (released.uid, released.released) == (uid, True)
    assert [(b.uid, b.released) for b in found["meeting-3f-2"]] == [(uid, False)]
    assert adapter.bookings([ROOM_A], at(12), at(18))["meeting-3f-1"] == []


def test_a_repeating_event_is_not_released(standin: GaroonStandin, adapter: GaroonBookings) -> None:
    uid = standin.add_event(("11",), at(10), at(11), event_type="REPEATING")
    [booking] = adapter.bookings([ROOM_A], at(9), at(18))["meeting-3f-1"]
    assert booking.uid == f"{uid}:2031-06-02"  # one occurrence of it

    with pytest.raises(BookingError, match=r"meeting-3f-1: release: event .* repeats.*by hand"):
        adapter.release(ROOM_A, booking, "No-show.")
    assert [f["id"] for f in standin.event(uid)["facilities"]] == ["11"]
    assert not standin.calls("PATCH")


def test_ad_hoc_booking_holds_the_facility_as_the_service_user(
    standin: GaroonStandin, adapter: GaroonBookings
) -> None:
    made = adapter.book(ROOM_A, at(14).astimezone(UTC), at(14, 30).astimezone(UTC), "使用中")

    event = standin.event(made.uid)
    assert event["eventType"] == "REGULAR"
    assert [f["id"] for f in event["facilities"]] == ["11"]
    assert [a["code"] for a in event["attendees"]] == [LOGIN]
    assert event["start"] == {"dateTime": "2031-06-02T14:00:00+09:00", "timeZone": "Asia/Tokyo"}
    assert event["notes"] == AD_HOC
    [read] = adapter.bookings([ROOM_A], at(9), at(18))["meeting-3f-1"]
    assert (read.uid, read.ad_hoc, read.start, read.end) == (made.uid, True, at(14), at(14, 30))


def test_a_read_waits_briefly_as_asked(
    standin: GaroonStandin, adapter: GaroonBookings, sleeper: Sleeper
) -> None:
    standin.add_event(("11",), at(10), at(11))
    standin.server.queue(Reply(429, b"", {"Retry-After": "3"}))
    standin.server.queue(Reply(503, b"", {"Retry-After": "1"}))

    assert len(adapter.bookings([ROOM_A], at(9), at(18))["meeting-3f-1"]) == 1
    assert sleeper.waits == [3.0, 1.0]

    for _ in range(4):
        standin.server.queue(Reply(503, b"", {"Retry-After": "2"}))
    with pytest.raises(BookingError, match=r"still throttled \(HTTP 503\)"):
        adapter.bookings([ROOM_A], at(9), at(18))
    assert sleeper.waits[2:] == [2.0, 2.0]  # a third wait would pass the read's cap
    assert sum(sleeper.waits[2:]) <= READ_WAIT_S


def write(adapter: GaroonBookings, booking: Booking, doing: str) -> None:
    """Check the booking in, or release it."""
    if doing == "check-in":
        adapter.check_in(ROOM_A, booking, at(10, 1))
    else:
        adapter.release(ROOM_A, booking, "No-show.")


@pytest.mark.parametrize("doing", ["check-in", "release"])
def test_a_throttled_write_fails_at_once_without_waiting(
    standin: GaroonStandin, adapter: GaroonBookings, sleeper: Sleeper, doing: str
) -> None:
    uid = standin.add_event(("11", "12"), at(10), at(11), notes="memo")
    [booking] = adapter.bookings([ROOM_A], at(9), at(18))["meeting-3f-1"]
    standin.server.queue(Reply(429, b"", {"Retry-After": "1"}), lambda r: r.method == "PATCH")

    with pytest.raises(BookingError, match=r"still throttled \(HTTP 429\)"):
        write(adapter, booking, doing)
    assert sleeper.waits == []
    event = standin.event(uid)
    assert (event["notes"], len(event["facilities"])) == ("memo", 2)


@pytest.mark.parametrize("doing", ["check-in", "release"])
def test_a_moved_booking_is_not_written(
    standin: GaroonStandin, adapter: GaroonBookings, doing: str
) -> None:
    uid = standin.add_event(("11", "12"), at(10), at(11), notes="memo")
    [booking] = adapter.bookings([ROOM_A], at(9), at(18))["meeting-3f-1"]
    standin.move(uid, at(14), at(15))  # the organiser moved it meanwhile

    with pytest.raises(BookingError, match="the booking moved since it was read"):
        write(adapter, booking, doing)
    event = standin.event(uid)
    assert (event["notes"], len(event["facilities"])) == ("memo", 2)
    assert not standin.calls("PATCH")
    [moved] = adapter.bookings([ROOM_A], at(9), at(18))["meeting-3f-1"]
    assert (moved.start, moved.released) == (at(14), False)


def test_a_release_leaves_notes_too_long_to_append_to_whole(
    standin: GaroonStandin, adapter: GaroonBookings
) -> None:
    memo = "議事" * (MAX_NOTES // 2)
    uid = standin.add_event(("11", "12"), at(10), at(11), notes=memo)
    [booking] = adapter.bookings([ROOM_A], at(9), at(18))["meeting-3f-1"]

    adapter.release(ROOM_A, booking, "No-show.")

    event = standin.event(uid)
    assert event["notes"] == memo
    assert [f["id"] for f in event["facilities"]] == ["12"]


def test_a_check_in_is_refused_rather_than_cut_long_notes(
    standin: GaroonStandin, adapter: GaroonBookings
) -> None:
    memo = "x" * (MAX_NOTES - 10)
    uid = standin.add_event(("11",), at(10), at(11), notes=memo)
    [booking] = adapter.bookings([ROOM_A], at(9), at(18))["meeting-3f-1"]

    with pytest.raises(BookingError, match="notes are longer than"):
        adapter.check_in(ROOM_A, booking, at(10, 1))
    assert standin.event(uid)["notes"] == memo
    assert not standin.calls("PATCH")


def test_an_unreadable_facility_is_left_out_and_the_others_read(
    standin: GaroonStandin, adapter: GaroonBookings, caplog: pytest.LogCaptureFixture
) -> None:
    kept = standin.add_event(("12",), at(10), at(11))
    standin.server.queue(
        Reply.of(403, {"code": "GRN_CB_00001", "message": "x"}),
        lambda r: r.query.get("target") == ["11"],
    )

    found = adapter.bookings([ROOM_A, ROOM_B], at(9), at(18))

    assert list(found) == ["meeting-3f-2"]
    assert [b.uid for b in found["meeting-3f-2"]] == [kept]
    assert "meeting-3f-1: reading bookings: HTTP 403" in caplog.text
    standin.server.queue(Reply.of(403, {}), lambda r: r.method == "GET")
    with pytest.raises(BookingError, match="HTTP 403"):  # no room read: the calendar failed
        adapter.bookings([ROOM_A], at(9), at(18))


def test_a_wrong_password_names_the_fix_and_never_the_password(
    standin: GaroonStandin, tmp_path: Path
) -> None:
    adapter = GaroonBookings(
        settings(standin, tmp_path / "pw"), "not-the-password", httpx.Client(timeout=5)
    )
    with pytest.raises(BookingError) as caught:
        adapter.bookings([ROOM_A], at(9), at(18))
    adapter.close()

    message = str(caught.value)
    assert "calendar garoon room meeting-3f-1: reading bookings: HTTP 401 CB_WA01" in message
    assert "password_file" in message
    assert "not-the-password" not in message


def test_a_vanished_event_names_garoons_error(
    standin: GaroonStandin, adapter: GaroonBookings
) -> None:
    uid = standin.add_event(("11",), at(10), at(11))
    [booking] = adapter.bookings([ROOM_A], at(9), at(18))["meeting-3f-1"]
    del standin.events[uid]

    with pytest.raises(BookingError, match=r"check-in: HTTP 404 GRN_SCHD_13001; check base_url"):
        adapter.check_in(ROOM_A, booking, at(10, 1))


def test_a_resource_that_is_no_facility_id_is_an_error(adapter: GaroonBookings) -> None:
    with pytest.raises(BookingError, match=r"resource 'Room A' is not a Garoon facility id"):
        adapter.bookings([room("meeting-3f-9", "Room A")], at(9), at(18))


@pytest.mark.parametrize(
    ("reply", "complaint"),
    [
        (Reply(200, b" " * 1_000_001), "over 1000000"),
        (Reply(200, b'{"events": [{"id": "1"'), "not JSON"),
        (Reply.of(200, ["not", "an", "object"]), "not a JSON object"),
        (Reply.of(200, {"events": {"id": "1"}}), "no `events` list"),
        (Reply.of(200, {"events": [], "hasNext": True}), "paging is broken"),
        (Reply(500, b"<html>Internal error</html>"), "HTTP 500; Garoon failed"),
    ],
    ids=["huge", "truncated", "array", "events-not-list", "endless", "html-error"],
)
def test_hostile_replies_are_errors_not_tracebacks(
    standin: GaroonStandin, adapter: GaroonBookings, reply: Reply, complaint: str
) -> None:
    standin.server.queue(reply)

    with pytest.raises(BookingError, match="calendar garoon room meeting-3f-1") as caught:
        adapter.bookings([ROOM_A], at(9), at(18))
    assert complaint in str(caught.value)


def test_a_malformed_event_is_skipped_and_the_rest_kept(
    standin: GaroonStandin, adapter: GaroonBookings
) -> None:
    good = standin.add_event(("11",), at(10), at(11))
    naive = standin.add_event(("11",), at(12), at(13))
    standin.event(naive)["start"] = {"dateTime": "2031-06-02T12:00:00", "timeZone": "Asia/Tokyo"}
    backwards = standin.add_event(("11",), at(14), at(15))
    standin.event(backwards)["end"] = standin.event(backwards)["start"]
    no_end = standin.add_event(("11",), at(16), at(17))
    del standin.event(no_end)["end"]

    found = adapter.bookings([ROOM_A], at(9), at(18))

    assert [b.uid for b in found["meeting-3f-1"]] == [good]


def test_the_api_root_follows_the_edition() -> None:
    assert api_root("https://city.cybozu.com/") == "https://city.cybozu.com/g/api/v1"
    assert api_root("https://city.cybozu.com/g") == "https://city.cybozu.com/g/api/v1"
    assert (
        api_root("http://grn.city.example/cgi-bin/cbgrn/grn.cgi")
        == "http://grn.city.example/cgi-bin/cbgrn/grn.cgi/api/v1"
    )
    assert (
        api_root("http://grn.city.example/scripts/cbgrn/grn.exe/")
        == "http://grn.city.example/scripts/cbgrn/grn.exe/api/v1"
    )


def test_open_garoon_reads_the_password_file(standin: GaroonStandin, tmp_path: Path) -> None:
    password_file = tmp_path / "garoon-password"
    password_file.write_text(PASSWORD + "\n")
    standin.add_event(("11",), at(10), at(11))

    adapter = open_garoon(settings(standin, password_file))
    try:
        assert len(adapter.bookings([ROOM_A], at(9), at(18))["meeting-3f-1"]) == 1
    finally:
        adapter.close()
        adapter.close()  # idempotent
    with pytest.raises(BookingError, match="used after close"):
        adapter.bookings([ROOM_A], at(9), at(18))

    with pytest.raises(BookingError, match=r"garoon: cannot read password_file .*missing"):
        open_garoon(settings(standin, tmp_path / "missing"))


def test_logs_carry_no_password_or_personal_data(
    standin: GaroonStandin, adapter: GaroonBookings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    uid = standin.add_event(("11",), at(10), at(11), subject="人事面談", creator="tanaka-h")
    del standin.event(standin.add_event(("11",), at(12), at(13)))["end"]
    [booking] = adapter.bookings([ROOM_A], at(9), at(18))["meeting-3f-1"]
    adapter.check_in(ROOM_A, booking, at(10, 1))
    adapter.release(ROOM_A, booking, "No-show.")
    assert booking.uid == uid

    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "skipped" in logged  # the malformed event was logged, by id only
    encoded = base64.b64encode(f"{LOGIN}:{PASSWORD}".encode()).decode()
    for secret in (PASSWORD, encoded, "人事面談", "tanaka-h"):
        assert secret not in logged
