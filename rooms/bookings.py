"""What a booking is, and the port every calendar adapter implements.

A booking lives in a room's calendar in some outside system (CalDAV, Microsoft Graph, Garoon).
The service reads bookings, checks them in when presence shows up, releases no-shows, and books
unbooked use; each adapter maps these four operations onto its own system.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from edge.errors import EdgeError

if TYPE_CHECKING:
    from rooms.config import RoomSettings


class BookingError(EdgeError):
    """A calendar refused or failed an operation; the message names the calendar and the fix."""


@dataclass(frozen=True, slots=True)
class Booking:
    """One booking of one room, as its calendar holds it.

    `organiser`, `attendees` and `title` are personal data: they go to UC presence and to the
    organiser's notice, never to the floor view, the log's public fields or Home Assistant.
    """

    calendar: str  # the [[calendars]] id it came from
    room: str  # zone id
    uid: str  # the calendar system's own id (CalDAV UID, Graph event id, Garoon event id)
    start: datetime  # timezone-aware
    end: datetime
    organiser: str = ""  # mail address / user id
    attendees: tuple[str, ...] = ()
    title: str = ""
    checked_in: datetime | None = None  # when this service checked it in (read back)
    released: bool = False  # cancelled, declined by the room, or the room removed from it
    ad_hoc: bool = False  # made by this service for use nobody had booked

    def __repr__(self) -> str:  # no personal data in logs
        state = "released" if self.released else "checked-in" if self.checked_in else "booked"
        return (
            f"<Booking {self.calendar}:{self.uid[:12]} {self.room} "
            f"{self.start.isoformat()}..{self.end.isoformat()} {state}>"
        )


class BookingAdapter(Protocol):
    """A calendar system's bookings for the rooms it holds."""

    def bookings(
        self, rooms: Sequence[RoomSettings], start: datetime, end: datetime
    ) -> dict[str, list[Booking]]:
        """Return each room's bookings overlapping [start, end), released ones included.

        Called every poll for all the rooms this calendar holds: an adapter asks its system
        only for what changed since the last call where it can (CalDAV ctag / sync-token,
        one query for many facilities), so a poll of forty rooms costs a request or two.
        A room it could not read is left out of the answer (the caller keeps that room's
        last bookings); every room read is in it, with [] when it has none. Raises
        BookingError when none of the rooms can be read; the caller keeps what it had.
        """
        ...

    def check_in(self, room: RoomSettings, booking: Booking, at: datetime) -> None:
        """Record in the booking that presence checked it in at `at`."""
        ...

    def release(self, room: RoomSettings, booking: Booking, reason: str) -> None:
        """Give the room back: cancel the booking or take the room off it, telling the
        organiser `reason` (plain words, no personal data of anyone else)."""
        ...

    def book(self, room: RoomSettings, start: datetime, end: datetime, title: str) -> Booking:
        """Book the room for use nobody had booked, so nobody else walks in."""
        ...

    def close(self) -> None:
        """Release connections; idempotent."""
        ...
