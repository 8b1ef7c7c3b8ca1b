"""What a person's UC status may say, and how it follows from the building's own data (pure).

The meaning of each state, for the city's personal-information rules:

- a person who has not opted in (`edge-provision people uc-presence`): nothing is ever sent;
- AWAY: outside the security line: their last crossing today was out, or they have not crossed
  in today (local time; a crossing in yesterday with no crossing out counts as out from
  midnight, so nobody stays "in the building" overnight by a forgotten tap);
- AVAILABLE: inside the line ("in the building"), and nothing below applies;
- MEETING: inside, and organiser or attendee of a booking of a meeting room (or an attendee of
  a phone-booth booking) that is checked in and in progress;
- PHONE: inside, and organiser of a phone-booth booking that is checked in and in progress.

Precedence: PHONE > MEETING > AVAILABLE > AWAY. A focus-booth booking changes nothing: working
alone is "in the building". A state never says which room, which floor or which meeting.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, tzinfo
from enum import IntEnum

from rooms.bookings import Booking


class UcState(IntEnum):
    """A person's status, ordered by precedence (the higher wins)."""

    AWAY = 0
    AVAILABLE = 1
    MEETING = 2
    PHONE = 3

    @property
    def words(self) -> str:
        """The plain words a UC client shows beside the status (empty when away)."""
        return _WORDS[self]


_WORDS = {
    UcState.AWAY: "",
    UcState.AVAILABLE: "in the building",
    UcState.MEETING: "in a meeting",
    UcState.PHONE: "on the phone",
}


def address(text: str) -> str:
    """Return a calendar address as it is compared: no `mailto:`, lower case, trimmed."""
    text = text.strip()
    if text[:7].lower() == "mailto:":
        text = text[7:]
    return text.strip().lower()


def inside_today(last_in: bool, crossed_at: datetime, at: datetime, timezone: tzinfo) -> bool:
    """Return whether a person whose last crossing (in or out) was at `crossed_at` is inside."""
    if not last_in:
        return False
    return crossed_at.astimezone(timezone).date() == at.astimezone(timezone).date()


def engagements(
    active: Sequence[Booking], room_kinds: Mapping[str, str], at: datetime
) -> dict[str, UcState]:
    """Return {address: MEETING or PHONE} from the bookings checked in and in progress.

    The caller passes only bookings it has checked in (its engine knows before the calendar's
    copy says so); released ones and ones not in progress at `at` are passed over here.
    """
    found: dict[str, UcState] = {}
    for booking in active:
        if booking.released:
            continue
        if not booking.start <= at < booking.end:
            continue
        kind = room_kinds.get(booking.room)
        if kind not in ("meeting-room", "phone-booth"):
            continue
        organiser = address(booking.organiser) if booking.organiser else ""
        if organiser:
            mark = UcState.PHONE if kind == "phone-booth" else UcState.MEETING
            found[organiser] = max(found.get(organiser, UcState.AWAY), mark)
        for attendee in booking.attendees:
            who = address(attendee)
            if who and who != organiser:
                found[who] = max(found.get(who, UcState.AWAY), UcState.MEETING)
    return found


def state_of(inside: bool, addresses: Iterable[str], engaged: Mapping[str, UcState]) -> UcState:
    """Return a person's state from whether they are inside and their bookings' engagements."""
    if not inside:
        return UcState.AWAY
    return max((engaged.get(a, UcState.AVAILABLE) for a in addresses), default=UcState.AVAILABLE)
