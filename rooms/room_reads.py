"""Reading a calendar one room at a time: what Graph and Garoon adapters share.

Each room is asked on its own. A room that cannot be read is answered with its last bookings
(left out if it was never read), so one broken room never blanks the others nor itself, and
BookingError is raised only when no room could be read. A release the adapter made is
remembered for a day, because the system may drop the booking from the room's listing (a
declined event, a facility taken off it) and it must still read back as released.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from rooms.bookings import Booking, BookingError
from rooms.config import RoomSettings

log = logging.getLogger(__name__)

ReadRoom = Callable[[RoomSettings, datetime, datetime], list[Booking]]


class RoomReads:
    """Each room's last bookings read and the releases made, for one calendar."""

    def __init__(self) -> None:
        self._released: dict[tuple[str, str], Booking] = {}
        self._last: dict[str, list[Booking]] = {}

    def __repr__(self) -> str:
        return f"<RoomReads {len(self._last)} rooms, {len(self._released)} releases kept>"

    def read(
        self, rooms: Sequence[RoomSettings], start: datetime, end: datetime, read_room: ReadRoom
    ) -> dict[str, list[Booking]]:
        """Return each room's bookings overlapping [start, end), released ones included."""
        kept = start - timedelta(days=1)  # releases a day past are no longer asked about
        self._released = {k: b for k, b in self._released.items() if b.end > kept}
        found: dict[str, list[Booking]] = {}
        failed: list[BookingError] = []
        for room in rooms:
            try:
                listed = read_room(room, start, end)
                self._last[room.zone] = listed
            except BookingError as error:
                log.warning("%s; keeping its last bookings", error)
                failed.append(error)
                last = self._last.get(room.zone)
                if last is not None:
                    found[room.zone] = [b for b in last if b.start < end and b.end > start]
                continue
            uids = {b.uid for b in listed}
            for (zone, uid), booking in self._released.items():
                overlaps = booking.start < end and booking.end > start
                if zone == room.zone and uid not in uids and overlaps:
                    listed.append(booking)
            found[room.zone] = listed
        if failed and len(failed) == len(rooms):
            raise failed[0]
        return found

    def released(self, room: RoomSettings, booking: Booking) -> None:
        """Remember that this adapter released `booking`."""
        self._released[(room.zone, booking.uid)] = replace(booking, released=True)
