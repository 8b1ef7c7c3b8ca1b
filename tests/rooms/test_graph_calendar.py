"""The Microsoft Graph adapter against a stand-in that checks each request's documented shape."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from rooms.bookings import Booking, BookingError
from rooms.config import GraphCalendar, RoomSettings
from rooms.graph_auth import GraphToken
from rooms.graph_calendar import GraphBookings, open_graph
from rooms.rest import READ_WAIT_S
from tests.rooms.graph_standin import GraphStandin
from tests.rooms.standin_server import Reply

SECRET = "s3cret~Value.of-the~app"
ROOM_A = "room-2f-1@city.example"
ROOM_B = "room-2f-2@city.example"
DAY = datetime(2031, 6, 2, tzinfo=UTC)  # a Monday, far from the suite's own clock


def room(zone: str, mailbox: str) -> RoomSettings:
    return RoomSettings(
        zone=zone, name=zone, kind="meeting-room", floor=2, device="sensor-2f",
        calendar="m365", resource=mailbox,
    )  # fmt: skip


ROOMS = (room("meeting-2f-1", ROOM_A), room("meeting-2f-2", ROOM_B))


@pytest.fixture
def standin() -> Iterator[GraphStandin]:
    server = GraphStandin(tenant="city-tenant", client_id="app-1", secret=SECRET)
    server.add_room(ROOM_A)
    server.add_room(ROOM_B)
    yield server
    server.close()
    assert not server.server.problems, "requests off the documented shape:\n" + "\n".join(
        server.server.problems
    )


def settings(standin: GraphStandin, secret_file: Path) -> GraphCalendar:
    return GraphCalendar(
        kind="graph", id="m365", tenant="city-tenant", client_id="app-1",
        client_secret_file=secret_file, base_url=standin.base_url, token_url=standin.token_url,
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
def adapter(standin: GraphStandin, tmp_path: Path, sleeper: Sleeper) -> Iterator[GraphBookings]:
    client = httpx.Client(timeout=5)
    token = GraphToken("city-tenant", "app-1", SECRET, standin.token_url, client)
    bookings = GraphBookings(settings(standin, tmp_path / "secret"), token, client, sleep=sleeper)
    yield bookings
    bookings.close()


def at(hour: int, minute: int = 0) -> datetime:
    return DAY.replace(hour=hour, minute=minute)


def write(adapter: GraphBookings, booking: Booking, doing: str) -> None:
    """Check the booking in, or release it."""
    if doing == "check-in":
        adapter.check_in(ROOMS[0], booking, at(1, 1))
    else:
        adapter.release(ROOMS[0], booking, "No-show.")


def test_reads_each_rooms_bookings_in_the_window(
    standin: GraphStandin, adapter: GraphBookings
) -> None:
    first = standin.add_event(
        ROOM_A, at(1), at(2), subject="Budget", attendees=("a@city.example", "b@city.example")
    )
    cancelled = standin.add_event(ROOM_A, at(3), at(4), cancelled=True)
    standin.add_event(ROOM_A, at(12), at(13))  # outside the window
    other = standin.add_event(ROOM_B, at(1, 30), at(2, 30))

    found = adapter.bookings(ROOMS, at(0), at(6))

    assert [b.uid for b in found["meeting-2f-1"]] == [first, cancelled]
    booking = found["meeting-2f-1"][0]
    assert (booking.start, booking.end) == (at(1), at(2))
    assert booking.start.tzinfo is not None
    assert booking.organiser == "organiser@city.example"
    assert booking.attendees == ("a@city.example", "b@city.example")
    assert booking.title == "Budget"
    assert (booking.released, booking.checked_in, booking.ad_hoc) == (False, None, False)
    assert found["meeting-2f-1"][1].released  # cancelled by its organiser
    assert [b.uid for b in found["meeting-2f-2"]] == [other]


def test_follows_next_links_across_pages(standin: GraphStandin, adapter: GraphBookings) -> None:
    standin.page_size = 2
    uids = [standin.add_event(ROOM_A, at(h), at(h, 30)) for h in range(1, 6)]

    found = adapter.bookings(ROOMS[:1], at(0), at(8))

    assert [b.uid for b in found["meeting-2f-1"]] == uids
    assert len(standin.calls("GET", "/calendarView")) == 3


def test_check_in_is_read_back(standin: GraphStandin, adapter: GraphBookings) -> None:
    uid = standin.add_event(ROOM_A, at(1), at(2))
    booking = adapter.bookings(ROOMS[:1], at(0), at(6))["meeting-2f-1"][0]

    adapter.check_in(ROOMS[0], booking, at(1, 3))

    again = adapter.bookings(ROOMS[:1], at(0), at(6))["meeting-2f-1"][0]
    assert again.uid == uid
    assert again.checked_in == at(1, 3)
    assert not again.ad_hoc


def test_release_declines_as_the_room_with_the_reason(
    standin: GraphStandin, adapter: GraphBookings
) -> None:
    uid = standin.add_event(ROOM_A, at(1), at(2))
    booking = adapter.bookings(ROOMS[:1], at(0), at(6))["meeting-2f-1"][0]

    adapter.release(ROOMS[0], booking, "Nobody arrived within 10 minutes; the room is free again.")

    event = standin.event(ROOM_A, uid)
    assert event["responseStatus"]["response"] == "declined"
    assert event["_told"] == "Nobody arrived within 10 minutes; the room is free again."
    assert adapter.bookings(ROOMS[:1], at(0), at(6))["meeting-2f-1"][0].released


def test_a_declined_event_that_leaves_the_view_still_reads_back_released(
    standin: GraphStandin, adapter: GraphBookings
) -> None:
    standin.declined_leave_view = True
    uid = standin.add_event(ROOM_A, at(1), at(2))
    booking = adapter.bookings(ROOMS[:1], at(0), at(6))["meeting-2f-1"][0]

    adapter.release(ROOMS[0], booking, "No-show.")

    [again] = adapter.bookings(ROOMS[:1], at(0), at(6))["meeting-2f-1"]
    assert (again.uid, again.released) == (uid, True)
    assert adapter.bookings(ROOMS[:1], at(3), at(6))["meeting-2f-1"] == []


def test_ad_hoc_booking_is_marked_checked_in_and_released_by_deleting(
    standin: GraphStandin, adapter: GraphBookings
) -> None:
    made = adapter.book(ROOMS[0], at(1), at(1, 30), "In use (unbooked)")

    assert made.ad_hoc
    event = standin.event(ROOM_A, made.uid)
    assert event["showAs"] == "busy"
    [read] = adapter.bookings(ROOMS[:1], at(0), at(6))["meeting-2f-1"]
    assert (read.uid, read.ad_hoc, read.start, read.end) == (made.uid, True, at(1), at(1, 30))

    adapter.check_in(ROOMS[0], read, at(1, 1))  # the extension exists: updated, still ad hoc
    [checked] = adapter.bookings(ROOMS[:1], at(0), at(6))["meeting-2f-1"]
    assert (checked.checked_in, checked.ad_hoc) == (at(1, 1), True)

    adapter.release(ROOMS[0], checked, "Left early.")
    assert made.uid not in standin.mailboxes[ROOM_A]
    [gone] = adapter.bookings(ROOMS[:1], at(0), at(6))["meeting-2f-1"]
    assert gone.released


def test_a_read_waits_briefly_as_asked(
    standin: GraphStandin, adapter: GraphBookings, sleeper: Sleeper
) -> None:
    standin.add_event(ROOM_A, at(1), at(2))
    busy = Reply.of(429, {"error": {"code": "TooManyRequests", "message": "Throttled"}},
                    {"Retry-After": "2"})  # fmt: skip
    standin.server.queue(busy, lambda r: "calendarView" in r.path)
    standin.server.queue(busy, lambda r: "calendarView" in r.path)

    found = adapter.bookings(ROOMS[:1], at(0), at(6))

    assert len(found["meeting-2f-1"]) == 1
    assert sleeper.waits == [2.0, 2.0]


def test_a_read_gives_up_once_its_wait_would_pass_the_cap(
    standin: GraphStandin, adapter: GraphBookings, sleeper: Sleeper
) -> None:
    for _ in range(4):
        standin.server.queue(Reply(503, b"", {"Retry-After": "2"}), lambda r: "/users/" in r.path)

    with pytest.raises(BookingError, match=r"m365 room meeting-2f-1.*still throttled \(HTTP 503\)"):
        adapter.bookings(ROOMS[:1], at(0), at(6))
    assert sum(sleeper.waits) <= READ_WAIT_S
    assert sleeper.waits == [2.0, 2.0]


def test_a_long_retry_after_is_not_waited_by_a_read(
    standin: GraphStandin, adapter: GraphBookings, sleeper: Sleeper
) -> None:
    standin.server.queue(Reply(429, b"", {"Retry-After": "120"}), lambda r: "/users/" in r.path)

    with pytest.raises(BookingError, match=r"asked to wait 120 s"):
        adapter.bookings(ROOMS[:1], at(0), at(6))
    assert sleeper.waits == []


@pytest.mark.parametrize("doing", ["check-in", "release"])
def test_a_throttled_write_fails_at_once_without_waiting(
    standin: GraphStandin, adapter: GraphBookings, sleeper: Sleeper, doing: str
) -> None:
    uid = standin.add_event(ROOM_A, at(1), at(2))
    [booking] = adapter.bookings(ROOMS[:1], at(0), at(6))["meeting-2f-1"]
    busy = Reply(429, b"", {"Retry-After": "1"})
    standin.server.queue(busy, lambda r: r.method != "GET" or "/events/" in r.path)

    with pytest.raises(BookingError, match=r"still throttled \(HTTP 429\)"):
        write(adapter, booking, doing)
    assert sleeper.waits == []
    event = standin.event(ROOM_A, uid)
    assert (event["extensions"], event["responseStatus"]["response"]) == ([], "accepted")


def test_a_throttled_booking_fails_at_once_without_waiting(
    standin: GraphStandin, adapter: GraphBookings, sleeper: Sleeper
) -> None:
    standin.server.queue(
        Reply(503, b"", {"Retry-After": "1"}), lambda r: r.method == "POST" and "/users/" in r.path
    )

    with pytest.raises(BookingError, match=r"booking: still throttled \(HTTP 503\)"):
        adapter.book(ROOMS[0], at(3), at(4), "Walk-in")
    assert sleeper.waits == []


@pytest.mark.parametrize("doing", ["check-in", "release"])
def test_a_moved_booking_is_not_written(
    standin: GraphStandin, adapter: GraphBookings, doing: str
) -> None:
    uid = standin.add_event(ROOM_A, at(1), at(2))
    [booking] = adapter.bookings(ROOMS[:1], at(0), at(6))["meeting-2f-1"]
    standin.move(ROOM_A, uid, at(3), at(4))  # the organiser moved it meanwhile

    with pytest.raises(BookingError, match="the booking moved since it was read"):
        write(adapter, booking, doing)
    event = standin.event(ROOM_A, uid)
    assert (event["extensions"], event["responseStatus"]["response"]) == ([], "accepted")
    [moved] = adapter.bookings(ROOMS[:1], at(0), at(6))["meeting-2f-1"]
    assert (moved.start, moved.released) == (at(3), False)


def test_an_unreadable_room_is_left_out_and_the_others_read(
    standin: GraphStandin, adapter: GraphBookings, caplog: pytest.LogCaptureFixture
) -> None:
    kept = standin.add_event(ROOM_A, at(1), at(2))
    earlier = standin.add_event(ROOM_B, at(3), at(4))
    standin.denied.add(ROOM_B)

    found = adapter.bookings(ROOMS, at(0), at(6))

    assert list(found) == ["meeting-2f-1"]  # never read: left out, the caller keeps its own
    assert [b.uid for b in found["meeting-2f-1"]] == [kept]
    assert "meeting-2f-2: reading bookings: HTTP 403" in caplog.text

    standin.denied.clear()
    adapter.bookings(ROOMS, at(0), at(6))
    standin.denied.add(ROOM_B)
    found = adapter.bookings(ROOMS, at(0), at(6))
    assert [b.uid for b in found["meeting-2f-2"]] == [earlier]  # its last bookings read


def test_a_zone_name_that_is_a_directory_skips_only_that_event(
    standin: GraphStandin, adapter: GraphBookings
) -> None:
    good = standin.add_event(ROOM_A, at(1), at(2))
    odd = standin.add_event(ROOM_A, at(3), at(4))
    standin.event(ROOM_A, odd)["start"] = {"dateTime": "2031-06-02T03:00:00", "timeZone": "Asia"}
    other = standin.add_event(ROOM_B, at(1), at(2))

    found = adapter.bookings(ROOMS, at(0), at(6))

    assert [b.uid for b in found["meeting-2f-1"]] == [good]
    assert [b.uid for b in found["meeting-2f-2"]] == [other]


def test_an_expired_token_is_renewed_once(standin: GraphStandin, adapter: GraphBookings) -> None:
    standin.add_event(ROOM_A, at(1), at(2))
    adapter.bookings(ROOMS[:1], at(0), at(6))
    adapter.bookings(ROOMS[:1], at(0), at(6))
    assert standin.tokens_issued == 1  # cached between polls

    standin.revoke_tokens()
    assert len(adapter.bookings(ROOMS[:1], at(0), at(6))["meeting-2f-1"]) == 1
    assert standin.tokens_issued == 2


def test_a_token_refused_twice_is_an_error(standin: GraphStandin, adapter: GraphBookings) -> None:
    expired = Reply.of(401, {"error": {"code": "InvalidAuthenticationToken", "message": "x"}})
    standin.server.queue(expired, lambda r: "calendarView" in r.path)
    standin.server.queue(expired, lambda r: "calendarView" in r.path)

    with pytest.raises(BookingError, match="HTTP 401 InvalidAuthenticationToken"):
        adapter.bookings(ROOMS[:1], at(0), at(6))
    assert standin.tokens_issued == 2  # renewed once, not again


def test_a_wrong_secret_names_the_fix_and_never_the_secret(
    standin: GraphStandin, tmp_path: Path
) -> None:
    client = httpx.Client(timeout=5)
    token = GraphToken("city-tenant", "app-1", "wrong-secret-value", standin.token_url, client)
    adapter = GraphBookings(settings(standin, tmp_path / "s"), token, client, sleep=Sleeper())

    with pytest.raises(BookingError) as caught:
        adapter.bookings(ROOMS[:1], at(0), at(6))
    adapter.close()

    message = str(caught.value)
    assert "invalid_client (AADSTS7000215)" in message
    assert "client_secret_file" in message
    assert "wrong-secret-value" not in message  # the stand-in echoes it; we never repeat it


def test_a_room_outside_the_access_policy_names_the_permission(
    standin: GraphStandin, adapter: GraphBookings
) -> None:
    standin.denied.add(ROOM_B)

    with pytest.raises(BookingError) as caught:
        adapter.bookings(ROOMS[1:], at(0), at(6))

    message = str(caught.value)
    assert "calendar m365 room meeting-2f-2" in message
    assert "HTTP 403 ErrorAccessDenied" in message
    assert "Calendars.ReadWrite (application)" in message
    assert "application access policy" in message


def test_an_unknown_mailbox_points_at_the_rooms_resource(
    standin: GraphStandin, adapter: GraphBookings
) -> None:
    ghost = room("meeting-9f-1", "nobody@city.example")

    with pytest.raises(BookingError, match=r"meeting-9f-1.*HTTP 404.*`resource`"):
        adapter.bookings([ghost], at(0), at(6))


@pytest.mark.parametrize(
    ("reply", "complaint"),
    [
        (Reply(200, b"x" * 1_100_000, {"Content-Type": "application/json"}), "over 1000000"),
        (Reply(200, b"[" * 3_000_000, unsized=True), "over 1000000 bytes"),
        (Reply(200, b'{"value": [', {"Content-Type": "application/json"}), "not JSON"),
        (Reply(200, b"[" * 100_000 + b"]" * 100_000), "not JSON"),
        (Reply.of(200, {"value": "nope"}), "no `value` list"),
        (
            Reply.of(200, {"value": [], "@odata.nextLink": "http://evil.example/v1.0/x"}),
            "leaves http://127.0.0.1",
        ),
        (Reply.of(429, {}, {"Retry-After": "9999"}), "asked to wait 3600 s"),
    ],
    ids=[
        "huge",
        "huge-unsized",
        "truncated",
        "deeply-nested",
        "value-not-list",
        "next-link-elsewhere",
        "throttled-for-ever",
    ],
)
def test_hostile_replies_are_errors_not_tracebacks(
    standin: GraphStandin, adapter: GraphBookings, reply: Reply, complaint: str
) -> None:
    standin.server.queue(reply, lambda r: "calendarView" in r.path)

    with pytest.raises(BookingError, match="calendar m365") as caught:
        adapter.bookings(ROOMS[:1], at(0), at(6))
    assert complaint in str(caught.value)


@pytest.mark.parametrize(
    "tail", ["x\x00y", "a" * 70_000, "%zz\u3000\udcff"], ids=["nul", "70k", "bad-escapes"]
)
def test_a_hostile_same_origin_next_link_is_an_error(
    standin: GraphStandin, adapter: GraphBookings, tail: str
) -> None:
    link = f"{standin.base_url}/users/{ROOM_A}/calendarView?$skip={tail}"
    standin.server.queue(
        Reply(200, json.dumps({"value": [], "@odata.nextLink": link}).encode()),
        lambda r: "calendarView" in r.path,
    )

    with pytest.raises(BookingError, match="calendar m365 room meeting-2f-1") as caught:
        adapter.bookings(ROOMS[:1], at(0), at(6))
    assert len(str(caught.value)) < 400


def test_an_error_code_with_line_breaks_is_not_quoted(
    standin: GraphStandin, adapter: GraphBookings
) -> None:
    forged = Reply.of(400, {"error": {"code": "Bad\nWARNING forged line", "message": "x"}})
    standin.server.queue(forged, lambda r: "calendarView" in r.path)

    with pytest.raises(BookingError) as caught:
        adapter.bookings(ROOMS[:1], at(0), at(6))
    assert "\n" not in str(caught.value)
    assert "forged" not in str(caught.value)


def test_a_malformed_event_is_skipped_and_the_rest_kept(
    standin: GraphStandin, adapter: GraphBookings
) -> None:
    good = standin.add_event(ROOM_A, at(1), at(2))
    bad = standin.add_event(ROOM_A, at(3), at(4))
    standin.event(ROOM_A, bad)["start"] = {"dateTime": "not a time", "timeZone": "UTC"}
    odd = standin.add_event(ROOM_A, at(4), at(5))
    standin.event(ROOM_A, odd)["end"] = {"dateTime": "2031-06-02T05:00:00", "timeZone": "Mars"}

    found = adapter.bookings(ROOMS[:1], at(0), at(6))

    assert [b.uid for b in found["meeting-2f-1"]] == [good]


def test_open_graph_reads_the_secret_file(standin: GraphStandin, tmp_path: Path) -> None:
    secret_file = tmp_path / "graph-secret"
    secret_file.write_text(SECRET + "\n")
    standin.add_event(ROOM_A, at(1), at(2))

    adapter = open_graph(settings(standin, secret_file))
    try:
        assert len(adapter.bookings(ROOMS[:1], at(0), at(6))["meeting-2f-1"]) == 1
    finally:
        adapter.close()
        adapter.close()  # idempotent
    with pytest.raises(BookingError, match="used after close"):
        adapter.bookings(ROOMS[:1], at(0), at(6))


def test_open_graph_names_a_missing_secret_file(standin: GraphStandin, tmp_path: Path) -> None:
    with pytest.raises(BookingError, match=r"m365: cannot read client_secret_file .*missing"):
        open_graph(settings(standin, tmp_path / "missing"))


def test_booking_repr_and_errors_carry_no_personal_data(
    standin: GraphStandin, adapter: GraphBookings
) -> None:
    standin.add_event(ROOM_A, at(1), at(2), subject="Secret merger", organizer="ceo@city.example")
    [booking] = adapter.bookings(ROOMS[:1], at(0), at(6))["meeting-2f-1"]
    assert "merger" not in repr(booking)
    assert "ceo@" not in repr(booking)
    assert json.dumps(repr(adapter))
    assert timedelta(hours=1) == booking.end - booking.start


def test_logs_carry_no_secret_token_or_personal_data(
    standin: GraphStandin, adapter: GraphBookings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    uid = standin.add_event(ROOM_A, at(1), at(2), subject="Secret merger", organizer="ceo@x.jp")
    standin.event(ROOM_A, standin.add_event(ROOM_A, at(3), at(4)))["start"] = {"dateTime": 1}
    booking = next(
        b for b in adapter.bookings(ROOMS[:1], at(0), at(6))["meeting-2f-1"] if b.uid == uid
    )
    adapter.check_in(ROOMS[0], booking, at(1, 2))
    adapter.release(ROOMS[0], booking, "No-show.")
    standin.revoke_tokens()
    adapter.bookings(ROOMS[:1], at(0), at(6))

    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "skipped" in logged  # the malformed event was logged, by id only
    assert standin.tokens_issued == 2
    for secret in (SECRET, *standin.issued, "Secret merger", "ceo@x.jp"):
        assert secret not in logged


def test_releases_are_forgotten_a_day_after_they_end(
    standin: GraphStandin, adapter: GraphBookings
) -> None:
    standin.declined_leave_view = True
    standin.add_event(ROOM_A, at(1), at(2))
    [booking] = adapter.bookings(ROOMS[:1], at(0), at(6))["meeting-2f-1"]
    adapter.release(ROOMS[0], booking, "No-show.")

    later = at(0) + timedelta(days=2)
    assert adapter.bookings(ROOMS[:1], later, later + timedelta(hours=6))["meeting-2f-1"] == []
    assert adapter.bookings(ROOMS[:1], at(0), at(6))["meeting-2f-1"] == []  # forgotten
