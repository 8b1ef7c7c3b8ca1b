"""The UC states: what each person's status says, from crossings and bookings (pure)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from rooms.bookings import Booking
from rooms.uc.states import UcState, address, engagements, inside_today, state_of

TOKYO = ZoneInfo("Asia/Tokyo")
AT = datetime(2030, 4, 1, 10, 0, tzinfo=TOKYO)
KINDS = {"room-2a": "meeting-room", "booth-1": "phone-booth", "focus-1": "focus-booth"}


def booking(room: str, organiser: str = "", *attendees: str, **changes: object) -> Booking:
    fields: dict[str, object] = {
        "calendar": "cal",
        "room": room,
        "uid": f"uid-{room}",
        "start": AT - timedelta(minutes=30),
        "end": AT + timedelta(minutes=30),
        "organiser": organiser,
        "attendees": attendees,
        "title": "Budget review",
        "checked_in": AT - timedelta(minutes=29),
    }
    fields.update(changes)
    return Booking(**fields)  # type: ignore[arg-type]


def test_precedence_is_phone_meeting_available_away() -> None:
    assert UcState.PHONE > UcState.MEETING > UcState.AVAILABLE > UcState.AWAY
    assert [s.words for s in UcState] == ["", "in the building", "in a meeting", "on the phone"]


@pytest.mark.parametrize(
    ("text", "compared"),
    [
        ("MAILTO:Tanaka@City.Example", "tanaka@city.example"),
        (" @t:city.example ", "@t:city.example"),
    ],
)
def test_addresses_compare_without_mailto_and_case(text: str, compared: str) -> None:
    assert address(text) == compared


@pytest.mark.parametrize(
    ("last_in", "crossed", "inside"),
    [
        (True, AT - timedelta(hours=1), True),
        (False, AT - timedelta(hours=1), False),
        (True, datetime(2030, 3, 31, 23, 59, tzinfo=TOKYO), False),  # yesterday: out at midnight
        (True, datetime(2030, 3, 31, 15, 30, tzinfo=ZoneInfo("UTC")), True),  # 00:30 in Tokyo
    ],
)
def test_inside_means_crossed_in_today_local_time(
    last_in: bool, crossed: datetime, inside: bool
) -> None:
    assert inside_today(last_in, crossed, AT, TOKYO) is inside


def test_organisers_and_attendees_of_meeting_rooms_are_in_a_meeting() -> None:
    found = engagements([booking("room-2a", "mailto:A@city.example", "b@city.example")], KINDS, AT)
    assert found == {"a@city.example": UcState.MEETING, "b@city.example": UcState.MEETING}


def test_a_phone_booth_s_organiser_is_on_the_phone_and_its_attendees_in_a_meeting() -> None:
    found = engagements([booking("booth-1", "a@city.example", "b@city.example")], KINDS, AT)
    assert found == {"a@city.example": UcState.PHONE, "b@city.example": UcState.MEETING}


def test_the_higher_of_two_bookings_wins() -> None:
    found = engagements(
        [
            booking("room-2a", "x@city.example", "a@city.example"),
            booking("booth-1", "a@city.example"),
        ],
        KINDS,
        AT,
    )
    assert found["a@city.example"] is UcState.PHONE


@pytest.mark.parametrize(
    "passed_over",
    [
        booking("focus-1", "a@city.example"),  # working alone is "in the building"
        booking("room-2a", "a@city.example", released=True),
        booking("room-2a", "a@city.example", start=AT + timedelta(minutes=1)),  # not yet
        booking("room-2a", "a@city.example", end=AT),  # over
        booking("unknown-room", "a@city.example"),
    ],
)
def test_bookings_that_say_nothing_about_presence(passed_over: Booking) -> None:
    assert engagements([passed_over], KINDS, AT) == {}


def test_state_follows_the_line_first_then_engagements() -> None:
    engaged = {"a@city.example": UcState.MEETING, "@a:city.example": UcState.PHONE}
    mine = {"a@city.example", "@a:city.example"}
    assert state_of(False, mine, engaged) is UcState.AWAY  # a meeting never says "in" alone
    assert state_of(True, mine, engaged) is UcState.PHONE
    assert state_of(True, {"a@city.example"}, engaged) is UcState.MEETING
    assert state_of(True, {"c@city.example"}, engaged) is UcState.AVAILABLE
    assert state_of(True, set(), {}) is UcState.AVAILABLE
